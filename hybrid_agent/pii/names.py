"""PERSON names in call transcripts without an NLP model: cue phrases, a name list, spelled letters.

Why this module is long: most of it is the word lists (stop words, everyday words that are also names,
always-capitalized words) that tell a name from prose without a model.  And why no model: no spaCy NER model can be installed (nor downloaded at run time), and speech-recognizer text is mostly
lower case, so capitalization alone cannot find names.  Callers announce their names with a few phrases and
spell them letter by letter.  Strong cues ("my name is", "the account holder is", "X is my name") take any
word that is no function word, verb or adjective (``STOP``); guarded cues ("it's under", "i'm", "last name",
"speak to", "dr") and weak cues ("this is", "it's", "X speaking", "X here", "X calling") need a first name
from the gazetteer (faker's person providers, read offline) that is no everyday word (``ORDINARY``) or
always-capitalized word (``PROPER``), or a capitalized word in otherwise lower-case text.  Spelled runs count
after a name or spelling cue; alone only as 4+ capitals.

Every regex here is linear: the tokenizer's repeated group starts with a non-letter, the prefilter is
bounded alternatives; the rest walks the tokens once.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
import unicodedata
from dataclasses import dataclass

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

log = logging.getLogger(__name__)

__all__ = ["PersonCueRecognizer", "might_hold_name", "name_lists"]


def _w(s: str) -> frozenset[str]:
    return frozenset(s.split())


#: never (part of) a name: function words, auxiliaries, common verbs, adjectives, adverbs, call-centre nouns
STOP = _w("""
a an the this that these those there here where when why how what which who whom whose whoever whatever i me my mine myself you
your yours yourself he him his himself she her hers herself it its itself we us our ours they them their theirs one ones someone
somebody anyone anybody everyone everybody nobody none all any some each every both either neither few many much more most less
least other others another such same own i'm im i've i'd i'll you're you've you'd you'll he's she's it's we're we've they're
they've that's thats there's theres here's what's who's whos how's let's isn't aren't wasn't weren't don't dont doesn't didn't
can't cant won't wouldn't couldn't shouldn't haven't hasn't hadn't ain't gonna wanna gotta of to in on at by for from with without
within about above below under over into onto upon off out up down through across along around behind beside besides between
beyond except inside outside near past since till until toward towards via per than as like unlike and or but nor so yet if
because cause though although whether while whereas then else also too am is are was were be been have has had do does did done
can could would should shall must might ought not no yes yeah yep yup yea nope nah ok okay alright sure very quite pretty rather
just only even still already again always never ever often sometimes maybe perhaps almost now today tonight tomorrow yesterday
soon later earlier early late ago once twice anyway anyways somehow somewhere anywhere everywhere nowhere away back forward
together instead otherwise however therefore thus please thanks thank cheers sorry hi hello hey bye goodbye welcome well oh um umm
uh uhh er erm uhm hmm mm ah eh huh wow gosh get gets got gotten go goes went gone come comes came call calls say says said tell
tells told ask asks need needs want wants know knows knew think thinks thought see sees saw seen look looks try tries make makes
made take takes took taken give gives gave given help helps work works pay pays put puts keep keeps kept let lets use uses show
shows change changes spell spells spelt hold holds held wait waits check checks talk talks hear hears heard listen sign signs
verify confirm cancel close open send sends sent lose loses lost steal stole stolen happen happens pass passes die dies live lives
move moves buy bought sell sold order orders return returns find found leave left start starts stop stops run runs ran brought
read write wrote written fix report dispute charge charges mean means meant feel felt seem seems become became begin began stay
stays speak speaks spoke understand understood remember forget forgot guess wish hate care owe owes log reset set good great fine
nice bad wrong right correct incorrect true false new old whole full entire last first next second third main real actual legal
official proper current blank empty busy free ready able happy glad sad upset angry mad afraid urgent important crazy insane
awesome perfect weird strange funny odd simple easy hard difficult tricky big small huge quick fast slow high low common unusual
normal regular usual typical name names surname account accounts card cards number numbers phone address email mail bank customer
customers caller holder owner member person people guy guys man woman sir madam ma'am mister things stuff questions problem
problems issue issues service services support team manager agent rep supervisor office company system record records policy claim
balance fee money line voicemail message time times day days week weeks month months year years minute minutes hour hours
afternoon night weekend wife husband son daughter mother father mom mum dad brother sister friend spouse partner kid kids child
children boyfriend girlfriend grandmother grandfather grandma grandpa aunt uncle cousin parent parents neighbor neighbour boss
self behalf side part end point way lot bit kind sort type reason deal letter letters word words info details detail code pin
password id reference ticket amount total price cost refund credit debit loan mortgage insurance warranty review control contract
process progress age file profile place home house car street city state country area zip text online website app call-back
callback transfer speaker someone's sec mo ii es en und org among ha ss ta ing irs mats om ib liga mont raf tu isn sys sla god
after before against enough far half single known due further former similar several certain alone average original present
private dead sick ill unwell abroad overseas blind deaf asleep absent ahead apart aware cannot anymore elsewhere whenever whilst
somewhat despite plus vs etc anti non pre pro re co ex sub multi semi mid extra super mini ultra kinda sorta ya yo tho haha lol
damn two three four five six seven eight nine ten double better different unique
""")

#: names that are everyday lower-case words: names only after a strong cue, or when capitalized mid-sentence
ORDINARY = _w("""
will mark bill rose hope grace frank jack art summer dawn faith joy pat ray rich hunter page penny sandy love long little case job
young north red major west baby chance star king park worth green ball river rock peace brown miles link justice judge lady cash
spring winter hall queen royal hill silver stone wood lucky roll victory prince sky dick forest banks grant max storm journey
urban bird minor orange tiny wing bell branch heaven lane mate rice marine princess pink ford roman bush hunt junior rush drew
angel charity duke gray innocent mac diamond kit walker comfort saint buddy crystal dean roger bishop jay ward doc fate gene fancy
rob ties wolf liberty fleet foster precious robin eve chip candy clay mercy noble baker pleasant skip loyal patience villa destiny
trace turner cherry earl chuck treasure marvel rocky shade sunshine pearl pepper rod haven miracle sterling delta ace babe ally
cam cliff lemon bee olive bud butler fairy reed sunny blessing doll elder sierra dot echo hart arch cannon carol fisher buck tan
chin indie dock neo pal cord dale kitty porter ruby wade amber berry handy canyon tab chi lily grove lance chad ginger kay nova
randy champ shepherd tory trinity homer abbey baron holly karma glen graves heather marsh marshal saga coral hardy genesis ivory
levy mat sincere violet freeman ivy merry rand sage pier woody archer gal melody venus atlas sim belle fuller raven bliss daisy
finn jade valentine velvet brooke dev flint herb greene heath iris nat brook franco hank mayo ernest harley yen creed flora mack
moody nam mart monte purity sol watt willow jewel piper ransom dell dove dusty gala earnest basil scarlet laurel lyric noel puck
safari blossom gale luna rusty willy colon emerald hale mare meadow viking weaver isa brit poppy miner patty colt lea tor windy
lore mal tanner messiah dolly hazel kaiser nana viola almond tad aura cherish harden tex vita brandy imam rosemary lara levi al ed
don nick matt jan josh tracy cook power water white black law story post hand room short front list field date strong church fall
key lower hell lord parts deep wall sales gas cross drop fair fit master stock grand basic block foot pop glass lie brand bus
fresh smart ring wild bridge magic guard mountain arts beer moon powers fox snow flowers zero pages walls bright fields bond kiss
senator tank ban grab singer wise marks topic grey sharp killer hills gross waters woods bath pace pope cop hook lips poll bull
flood glasses reader roots parks priest bones brands bite dare gates rivers carrier mall bass knight brick suits divine palm pole
cruise hood camps ram bare oak dam shine hammer warrior farmer swift horn tours drum potter silk booth bridges sang bros
contractor merchant beard burger freely petty chambers hull savage stack junk kidney ferry lamb bail den salmon stark dash bean
curry wit cousins frost bore downs monk crane hay plaza rode champagne lad stern fry moss para media general press add council
author brain floor carry male tea kick governor era lawyer jail mile calm sing unknown cap fed tone harm server wash math wage
marry forum hence edit toy jet sole con oral canal nail raid yoga metro harsh lean peer par ham vi lo te ab gauge bent infant lone
ion idk sep ole ants imo tore tri mans ale sac manly gee geo icy ala sayin pleas gun gay golden colonel admiral alpha ridge
harmony essence meta versa cinnamon roar blaze unnamed santa doctor captain pastor sung mar les best clear cases sun hung
""")

#: names that are always capitalized anyway (months, places, peoples, brands): capitalization says nothing
PROPER = _w("""
january february march april may june july august september october november december monday tuesday wednesday thursday friday
saturday sunday america london paris texas florida boston washington york china india africa asia ireland israel berlin rome
dallas houston carolina arizona columbia melbourne indiana cleveland alabama missouri tennessee louisiana cuba kenya denver
phoenix brooklyn richmond holland dakota montana nevada orlando bristol milan columbus geneva stanford venice essex memphis manila
wellington arlington kingston alexandria trinidad valencia bali raleigh erie albion oman camden dayton reno lafayette angeles
hollywood spain poland madrid jerusalem orleans birmingham lanka monaco toledo albuquerque canton porto mesa nyc durham lancaster
lyon rio casa english french german spanish italian polish irish danish czech georgian philippine christian muslim baptist jesus
christ easter christmas australia canada mexico italy france germany japan england scotland
wales europe visa chase amex discover mastercard paypal amazon apple google microsoft verizon comcast xfinity sprint
geico allstate progressive ferrari porsche mercedes guinness gucci renault coca alexa siri medicare medicaid isis nazi bedford
avon indy nile dow kia lexus crete ceylon turkmen buick lamborghini prada versace yogi hyatt
""")

PARTICLES = _w("de del della der den di da das do dos du la le van von ter ten bin ibn el st")
TITLES = _w("mr mrs ms miss mister dr doctor prof professor officer nurse detective pastor father reverend captain")
FILLERS = _w("um umm uh uhh er erm uhm hmm mm ah oh eh like actually so well its it's")
#: a weak-cue name right before these is a business or a place ("this is acme support", "it's madison avenue")
ORG_WORDS = _w("""
bank banking department dept support team services service company insurance office clinic hospital pharmacy group center centre
agency airlines airline credit union financial mobile wireless energy electric health healthcare medical dental billing customer
care corp inc llc ltd university college school county police motors auto street st avenue ave road rd boulevard blvd lane drive
way station airport square garden gardens park city town club power mutual store hotel mall plaza heights village river lake beach
bay valley springs falls island foods fargo
""")
#: "<head> name is X" names no person after these heads ("the company name is acme")
NONPERSON_HEADS = _w("""
company business file user screen street road product plan network wifi brand store shop app device pet pet's dog dog's cat cat's
merchant vendor domain project team model group event hotel restaurant town city school program course song band book movie show
game channel page site website folder printer router bank
""")
SPELL_CUES = _w("spelled spell spelling spelt that's thats surname name")
STRONG_SPELL = _w("spelled spell spelling spelt")
#: labels of codes and ids: letters after them are not a name
NEG_LABELS = _w("""
code codes confirmation reference ref id number plate license licence zip postcode postal password pin order ticket booking serial
model account member policy claim case tracking voucher coupon promo vin email username user handle initials
""")
ACRONYMS = _w("""
html http https asap nasa hipaa fafsa aarp naacp usps atms covid swat cpap hvac aclu ncaa nato wifi amex isbn voip iban swift hsbc
usaa rsvp fico espn ascii jpeg llc fbi irs dmv ceo usa ssn atm
""")
SUFFIXES = ("ing", "ed", "ly", "tion", "sion", "ment", "ness", "able", "ible", "ful", "less", "ous", "ive", "ize", "ity", "ship")
EXTRA_FIRST = _w("wei ming jun xin hao yi hiroshi yuki kenji takeshi akira haruto minh tuan thanh huong linh jae hyun jin sung")
EXTRA_LAST = _w("""
wang li zhang liu chen yang huang zhao wu zhou xu sun zhu guo lin gao luo tanaka suzuki sato takahashi watanabe ito yamamoto
nakamura kobayashi kato kim lee park choi jung kang cho yoon jang lim nguyen tran pham hoang phan vu dang bui
""")

#: latin-script faker locales whose person providers make the gazetteer
LOCALES = tuple("""en en_US en_GB en_IE en_IN en_NZ en_PK en_KE en_NG ha_NG ig_NG yo_NG tw_GH sw zu_ZA es_MX es_ES es_CO es_AR
fr_FR fr_CA de_DE de_AT it_IT pl_PL pt_BR pt_PT nl_NL sv_SE da_DK no_NO fi_FI cs_CZ sk_SK hu_HU ro_RO tr_TR hr_HR sl_SI id_ID
vi_VN uz_UZ lt_LT lv_LV et_EE""".split())
_ATTR = re.compile(r"(?:first_names|last_names|\w{1,20}_last_names)(?:_\w{1,20})?")
_NAME_PART = re.compile(r"[a-z]+(?:['-][a-z]+)*")


def _fold(s: str) -> str:
    """Lower-case and ASCII-fold ("José" -> "jose"), as the name lists are."""
    s = s.lower().replace("\u2019", "'")
    return s if s.isascii() else unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()


@dataclass(frozen=True, slots=True)
class NameLists:
    first: frozenset[str]
    last: frozenset[str]
    clean_first: frozenset[str]  # first names that are no everyday or proper word: enough for a weak cue
    clean_last: frozenset[str]

    def known(self, w: str) -> bool:
        return w in self.first or w in self.last


_lists: list[NameLists] = []
_lock = threading.Lock()


def name_lists() -> NameLists:
    """The gazetteer, built on first use from faker's person providers (about 0.4 s), then shared."""
    with _lock:
        if not _lists:
            _lists.append(_build_lists())
    return _lists[0]


def _build_lists() -> NameLists:
    first, last = set(EXTRA_FIRST), set(EXTRA_LAST)
    for loc in LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{loc}").Provider
        except ImportError as exc:  # without faker, strong cues and spelled names still work; weak cues find nothing
            log.warning("faker person provider %s is not available (%s): the name list is smaller", loc, exc)
            if exc.name != f"faker.providers.person.{loc}":
                break  # no faker at all: one warning
            continue
        for attr in filter(_ATTR.fullmatch, dir(provider)):
            values = getattr(provider, attr, None)  # tuples, weighted dicts; some locales have properties
            for full in values if isinstance(values, (dict, tuple, list)) else ():
                for part in _NAME_PART.findall(_fold(str(full))):
                    (first if attr.startswith("first") else last).update(
                        p for p in (part, *part.split("-")) if len(p) > 1 and p not in PARTICLES)
    first, last, everyday = first - STOP, last - STOP, ORDINARY | PROPER
    return NameLists(frozenset(first), frozenset(last), frozenset(first - everyday), frozenset(last - everyday))


# ------------------------------------------------------------------------------------------ tokens
_TOKEN = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*|\d+|[^\w\s]")  # the repeated group starts with a non-letter
_SEPARATORS = frozenset(",-./")


@dataclass(slots=True)
class _Tok:
    text: str
    low: str  # folded, lower case
    key: str  # ``low`` without a possessive "'s": what the name lists are asked
    start: int
    end: int  # end of ``key``
    kind: str  # "w" word, "d" digits, "p" punctuation
    letters: str = ""  # a spelled unit: "s" or "s-m-i-t-h" -> "smith"
    cap: bool = False  # capitalized mid-sentence in otherwise lower-case text


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    for m in _TOKEN.finditer(text):
        raw, start, end = m.group(), m.start(), m.end()
        if not raw[0].isalpha():
            toks.append(_Tok(raw, raw, raw, start, end, "d" if raw.isdigit() else "p"))
            continue
        low = key = _fold(raw)
        if low.endswith("'s") and len(low) > 3 and low not in STOP:
            key, end = low[:-2], end - 2
        parts = key.split("-")
        toks.append(_Tok(raw, low, key, start, end, "w", "".join(parts) if all(len(p) == 1 for p in parts) else ""))
    _mark_capitals(toks)
    return toks


def _mark_capitals(toks: list[_Tok]) -> None:
    """Capitalization is evidence only in mostly lower-case text and only away from a sentence start."""
    cands: list[_Tok] = []
    lower, at_start, prev = 0, True, ""
    for t in toks:
        if t.kind == "p":
            at_start = at_start or (t.text in ".!?" and prev not in TITLES)  # "Dr. Patel" starts no sentence
            continue
        if t.kind == "w" and len(t.text) > 1 and not at_start and t.low not in ("i'm", "i'll", "i've", "i'd"):
            if t.text[0].isupper() and any(c.islower() for c in t.text[1:]):
                cands.append(t)
            elif t.text[0].islower():
                lower += 1
        at_start, prev = False, t.low
    for t in cands if lower and len(cands) <= lower else ():
        t.cap = True


# ------------------------------------------------------------------------------------------ cues
STRONG, UNDER, SELF, WEAK, TITLED = "strong", "under", "self", "weak", "titled"
#: cue words, matched on consecutive words, -> how much the name after them must prove (see ``_ok``)
_FORWARD: dict[tuple[str, ...], str] = {
    ("name", "is"): STRONG, ("name's",): STRONG, ("name", "was"): STRONG, ("my", "names"): STRONG, ("surname", "is"): STRONG,
    ("surname's",): STRONG, ("surname", "was"): STRONG, ("account", "holder", "is"): STRONG, ("account", "holder", "was"): STRONG,
    ("under", "the", "name"): STRONG, ("under", "the", "name", "of"): STRONG, ("in", "the", "name", "of"): STRONG,
    ("under", "name"): STRONG, ("name", "on", "the", "account", "is"): STRONG, ("name", "on", "the", "card", "is"): STRONG,
    ("account", "holder"): UNDER, ("it's", "under"): UNDER, ("its", "under"): UNDER, ("it", "is", "under"): UNDER,
    ("last", "name"): UNDER, ("first", "name"): UNDER, ("surname",): UNDER, ("behalf", "of"): UNDER, ("speak", "to"): UNDER,
    ("speak", "with"): UNDER, ("speaking", "with"): UNDER, ("talk", "to"): UNDER,
    ("named",): UNDER, ("called",): UNDER,
    ("i'm",): SELF, ("im",): SELF, ("i", "am"): SELF, ("call", "me"): SELF,
    ("this", "is"): WEAK, ("it's",): WEAK, ("its",): WEAK,
    **{(t,): TITLED for t in ("mr", "mrs", "ms", "dr", "doctor", "prof", "professor")},
}
#: cue words after the name: "smith is my name", "priya here"
_BACKWARD: dict[tuple[str, ...], str] = {
    ("is", "my", "name"): STRONG, ("is", "my", "first", "name"): STRONG, ("is", "my", "last", "name"): STRONG,
    ("is", "my", "surname"): STRONG, ("is", "my", "full", "name"): STRONG,
    ("speaking",): WEAK, ("here",): WEAK, ("calling",): WEAK,
}
_FORWARD_BY_LAST: dict[str, list[tuple[tuple[str, ...], str]]] = {}
_BACKWARD_BY_FIRST: dict[str, list[tuple[tuple[str, ...], str]]] = {}
for _words, _mode in _FORWARD.items():
    _FORWARD_BY_LAST.setdefault(_words[-1], []).append((_words, _mode))
for _words, _mode in _BACKWARD.items():
    _BACKWARD_BY_FIRST.setdefault(_words[0], []).append((_words, _mode))
_MODAL = _w("will may")  # "... john may i ask": no later name word unless capitalized
_NOT_SELF = _w("of as about")  # "speaking of which"
_MAX_GAP, _MAX_LETTERS = 8, 30  # spelled runs: characters between letters, letters in a name

# A cue word, or two single letters close together (as the spelled runs below): bounded alternatives, linear.
_HINT = re.compile(
    r"name|holder|under|behalf|spel|speak|talk|called|double|apostrophe"
    r"|\b(?:this|that['\u2019]?s|its?['\u2019]?s?|am|call|here|calling|i['\u2019]?m|mrs?|ms|dr|doctor|prof|professor)\b"
    r"|(?<![^\W\d_])[^\W\d_][\W_]{1,8}[^\W\d_](?![^\W\d_])",
    re.IGNORECASE,
)


def might_hold_name(text: str) -> bool:
    """False when ``text`` has no name cue and no spelled-letter run: the analyzer may skip it."""
    return _HINT.search(text) is not None


def _suffixed(w: str) -> bool:
    """An English verb/adjective/noun ending ("misspelled", "showing", "information"): no name when unlisted."""
    return len(w) > 4 and w.endswith(SUFFIXES)


def _is_glue(t: _Tok) -> bool:
    """Particles ("de", "van") and initials ("j k rowling") that sit between name words."""
    return t.kind == "w" and (t.key in PARTICLES or len(t.letters) == 1 and (t.key not in ("a", "i") or t.text.isupper()))


def _ok(t: _Tok, first: bool, mode: str, lists: NameLists) -> bool:
    """May ``t`` be a word of the name (its first word if ``first``) after a cue of ``mode``?"""
    w = t.key
    if t.kind != "w" or w in STOP or t.letters or not w.replace("'", "").replace("-", "").isalpha():
        return False
    known = lists.known(w)
    if mode == STRONG:
        return known or not _suffixed(w)
    if first:
        if w in lists.clean_first or (mode in (UNDER, TITLED) and w in lists.clean_last):
            return True
        return t.cap and w not in PROPER and (known or (mode != SELF and not _suffixed(w)))
    if w in PROPER or w in _MODAL:
        return t.cap and w not in PROPER
    if w in ORDINARY:
        return t.cap or w in lists.last  # "this is john green"
    return known or not _suffixed(w)


def _low(toks: list[_Tok], i: int) -> str:
    return toks[i].low if 0 <= i < len(toks) and toks[i].kind == "w" else ""


def _cue_at(lows: list[str], i: int, words: tuple[str, ...]) -> bool:
    if i < 0 or tuple(lows[i : i + len(words)]) != words:
        return False
    return not (words[0].startswith(("name", "surname")) and i > 0 and lows[i - 1] in NONPERSON_HEADS)  # "company name is"


def _beside_digits(toks: list[_Tok], k: int, step: int) -> bool:
    """Letters beside digits (maybe past one separator) are an id ("A B C 1 2 3"), not a name."""
    j = k + step
    if 0 <= j < len(toks) and toks[j].text in _SEPARATORS:
        j += step
    return 0 <= j < len(toks) and toks[j].kind == "d"


def _in_address(text: str, start: int, end: int) -> bool:
    """ "john" in "john.smith@example.com" is the e-mail recognizer's."""
    return (end + 1 < len(text) and text[end] in "@._" and text[end + 1].isalnum()) or (
        start > 1 and text[start - 1] in "@._" and text[start - 2].isalnum())


def _alphabet(v: str) -> bool:
    """ "A B C D", "X X X X": the alphabet or one letter repeated, not a spelled name."""
    steps = {ord(b) - ord(a) for a, b in zip(v, v[1:])}
    return steps <= {1} or steps <= {0}


_Hit = tuple[int, int, float, str]  # start, end, score, value ("" = the span's words)


class PersonCueRecognizer(LocalRecognizer):
    """PERSON after name cues, spelled letter by letter, or announced with a known first name (see the module doc)."""

    ENTITIES = ["PERSON"]

    def __init__(self) -> None:
        super().__init__(supported_entities=["PERSON"], name="PersonCueRecognizer", supported_language="en")

    def load(self) -> None:
        self._lists = name_lists()

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        if (entities and "PERSON" not in entities) or not might_hold_name(text):
            return []
        toks = _tokenize(text)
        lows = [t.low if t.kind == "w" else "" for t in toks]
        hits: list[_Hit] = []
        for i, low in enumerate(lows):
            for words, mode in _FORWARD_BY_LAST.get(low, ()):
                if _cue_at(lows, i - len(words) + 1, words):
                    hits += self._forward(toks, i + 1, mode)
            for words, mode in _BACKWARD_BY_FIRST.get(low, ()):
                if _cue_at(lows, i, words) and not (words[0] == "speaking" and _low(toks, i + 1) in _NOT_SELF):
                    hits += self._backward(toks, i - 1, mode)
        hits = [h for h in hits if not _in_address(text, h[0], h[1])] + self._spelled(toks)
        return [self._result(text, *h) for h in _best(hits, len(text))]

    def _forward(self, toks: list[_Tok], j: int, mode: str) -> list[_Hit]:
        n = len(toks)
        for _ in range(3):  # "my name is, uh, priya"; "dr. patel"
            j += j < n and (toks[j].low in FILLERS or toks[j].text in ",.")
        if j + 1 < n and toks[j].low in TITLES and (toks[j + 1].kind == "w" or toks[j + 1].text == "."):
            j += 2 if toks[j + 1].text == "." else 1
            mode = TITLED if mode in (WEAK, SELF) else mode
        taken: list[int] = []
        pending: list[int] = []  # glue waiting for the name word after it
        while j < n and len(taken) - len(pending) < 3:
            if _is_glue(toks[j]):
                pending.append(j)
                if len(pending) > 2:
                    return []  # a spelled run: _spelled's
            elif _ok(toks[j], not taken, mode, self._lists) and not (mode != STRONG and toks[j].low in ORG_WORDS):
                taken += [*pending, j]
                pending = []
                if toks[j].key != toks[j].low:
                    break  # "sam's club": a possessive ends the name
            else:
                break
            j += 1
        return self._span(toks, taken, mode)

    def _backward(self, toks: list[_Tok], j: int, mode: str) -> list[_Hit]:
        taken: list[int] = []
        while j >= 0 and len(taken) < 5 and (_ok(toks[j], False, mode, self._lists) or (_is_glue(toks[j]) and taken)):
            taken.insert(0, j)
            j -= 1
        while taken and (not _ok(toks[taken[0]], True, mode, self._lists) or sum(not _is_glue(toks[k]) for k in taken) > 3):
            taken.pop(0)  # the name starts at its first word that can begin one ("yes priya patel speaking")
        return self._span(toks, taken, mode)

    def _span(self, toks: list[_Tok], taken: list[int], mode: str) -> list[_Hit]:
        while taken and _is_glue(toks[taken[-1]]):
            taken.pop()
        if not taken:
            return []
        first, last, nxt = toks[taken[0]], toks[taken[-1]], taken[-1] + 1
        nxt += _low(toks, nxt) in ("and", "of")
        if mode != STRONG and last.key == last.low and _low(toks, nxt) in ORG_WORDS:
            return []  # "this is Acme support", "Pacific Gas and Electric" (not "doctor patel's office")
        clean = first.key in self._lists.clean_first
        if mode == STRONG or (mode in (UNDER, SELF) and (clean or first.key in self._lists.clean_last)):
            score = 0.85
        elif mode == WEAK:
            score = (0.75 if first.cap else 0.7) if clean else 0.65
        else:
            score = 0.75
        return [(first.start, last.end, score, "")]

    def _spelled(self, toks: list[_Tok]) -> list[_Hit]:
        """Runs of single letters ("S M I T H", "k-o-w-a-l-s-k-i", "o apostrophe n e i l l"), in one pass."""
        hits: list[_Hit] = []
        n, i = len(toks), 0
        while i < n:
            if not toks[i].letters:
                i += 1
                continue
            parts, last, k = [toks[i].letters], i, i + 1
            while k < n and toks[k].start - toks[k - 1].end <= _MAX_GAP:
                u, v = toks[k], toks[k + 1] if k + 1 < n else toks[k]
                if u.letters:
                    parts.append(u.letters)
                    last = k
                elif v.letters and v.start - u.end <= _MAX_GAP and (u.text in _SEPARATORS or u.low in _JOINERS):
                    parts.append(_JOINERS.get(u.low, "") or (v.letters[0] if u.low == "double" else ""))
                else:
                    break
                k += 1
            hits += self._judge_run(toks, i, last, "".join(parts).lower())
            i = last + 1
        return hits

    def _judge_run(self, toks: list[_Tok], i: int, last: int, value: str) -> list[_Hit]:
        letters = sum(c.isalpha() for c in value)
        if not 2 <= letters <= _MAX_LETTERS or _beside_digits(toks, i, -1) or _beside_digits(toks, last, 1):
            return []
        label, words, k = "", 0, i - 1
        while k >= 0 and words < 7 and not label:  # the nearest label within 6 words decides
            if toks[k].kind == "w":
                words += 1
                w = toks[k].low
                if w in NEG_LABELS or (w.startswith("name") and _low(toks, k - 1) in NONPERSON_HEADS):
                    label = "-"
                elif w in SPELL_CUES or w == "surname's":
                    label = w
            k -= 1
        if label not in ("", "-") and (letters > 2 or label in STRONG_SPELL):
            return [(toks[i].start, toks[last].end, 0.85, value)]
        caps = all(t.text.isupper() for t in toks[i : last + 1] if t.letters)
        if not label and caps and letters >= 4 and value not in ACRONYMS and not _alphabet(value):
            return [(toks[i].start, toks[last].end, 0.6, value)]
        return []

    def _result(self, text: str, start: int, end: int, score: float, value: str) -> RecognizerResult:
        value = value or " ".join(text[start:end].lower().replace("\u2019", "'").split())
        meta = {RecognizerResult.RECOGNIZER_NAME_KEY: self.name, RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id}
        meta["value"] = value
        return RecognizerResult("PERSON", start, end, score, recognition_metadata=meta)


_JOINERS = {"apostrophe": "'", "dash": "-", "hyphen": "-", "double": ""}


def _best(hits: list[_Hit], size: int) -> list[_Hit]:
    """Of overlapping spans keep the strongest, then the longest; cost is the spans' total length."""
    used = bytearray(size)
    kept: list[_Hit] = []
    for h in sorted(set(hits), key=lambda h: (-h[2], h[0] - h[1], h[0])):
        if not any(used[h[0] : h[1]]):
            used[h[0] : h[1]] = b"\1" * (h[1] - h[0])
            kept.append(h)
    return sorted(kept)
