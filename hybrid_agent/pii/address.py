"""ADDRESS recognizer: US and UK postal addresses in normalized call transcripts, no NLP model.

Why a token walker and not one big regex: an address is a sequence of word classes (house
number, street name words, street type, direction, unit, town, state, ZIP, postcode) whose
parts are optional and ambiguous ("s w" is a direction or the start of a postcode, "new york"
a city or a state).  Trying the few readings of each part over a tokenized text costs a
bounded amount of work per start token, so the scan is linear on any input; the only regexes
are anchored single-token shapes.

The text is what :func:`hybrid_agent.pii.normalize.normalize` returns: spoken numbers are
digits ("1427 north maple avenue"), spelled postcodes come as joined or spaced letters and
digits ("SW34UD", "s w 34 u d", "s w 1 a one a a").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

__all__ = ["ADDRESS", "AddressRecognizer", "uk_postcode_ok"]

ADDRESS = "ADDRESS"
SCORE_STREET = 0.85  # house number + street name + street type
SCORE_POSTCODE = 0.9  # a valid UK postcode, written, or spoken after a cue
SCORE_WEAK = 0.6  # a number + name with no street type but a state + ZIP / postcode; spaced capitals, no cue

# ------------------------------------------------------------------------ word lists
STREET_TYPES = frozenset(
    "street st avenue ave av road rd boulevard blvd lane ln drive dr court ct place pl way terrace ter terr circle cir parkway "
    "pkwy highway hwy close crescent cres gardens gdns grove square sq mews row hill walk park trail trl pike alley aly plaza "
    "plz path green view vale rise gate parade pde quay wharf esplanade promenade embankment causeway circus yard drove chase "
    "expressway expy freeway fwy turnpike tpke loop crossing xing landing commons heights hts cove cv bend glen meadow meadows "
    "ridge point pt hollow wynd brae".split()
)
# streets named without a type word: "1585 broadway"
SELF_TYPED = frozenset("broadway kingsway".split())
# "the crescent", "the green": a UK street whose whole name is "the" + type
THE_TYPES = frozenset("crescent green mews grove parade close square terrace drive avenue chase rise causeway esplanade "
                      "promenade strand broadway circus boulevard".split())
# "forty second street" reaches us as "40 second street": tens + ordinal word is one ordinal
ORDINAL_WORDS = frozenset("first second third fourth fifth sixth seventh eighth ninth".split())
TENS = frozenset("20 30 40 50 60 70 80 90".split())
# a type that is an everyday verb/noun when one of these follows: "12 main close to the station"
TYPE_AS_WORD = frozenset("close walk drive park way point view gate".split())
TYPE_AS_WORD_NEXT = frozenset("to by from of".split())
# cannot open a street name: "a 2 way street", "4 lane highway"
NOT_FIRST_NAME = frozenset("way lane".split())
DIRECTIONS = frozenset("n s e w ne nw se sw north south east west northeast northwest southeast southwest".split())
UNIT_WORDS = frozenset("apartment apt suite ste unit flat # hash".split())
UNIT_FIRST = frozenset("apartment apt suite ste unit flat".split())
UNIT_NUMBER = frozenset("number no #".split())
# "apartment 4 a lot ...": "a" is an article, not the unit letter
A_ARTICLE_NEXT = frozenset("lot bit few little week month day year couple new good big while long minute second".split())
# nouns of measure, money, count: "a 20 minute drive", "4 wheel drive", "12 dollars", "3 story walk up"
MEASURE = frozenset(
    "minute minutes min mins hour hours hr hrs second seconds sec secs day days week weeks month months year years mile miles "
    "km kilometer kilometers kilometre kilometres meter meters metre metres foot feet ft inch inches yard yards block blocks "
    "dollar dollars buck bucks cent cents pound pounds quid pence penny euro euros grand percent wheel wheels story stories "
    "storey storeys star stars bedroom bedrooms bed beds car cars door doors seater lanes people kids children items item "
    "things thing pack packs piece pieces hand person".split()
)
# function and conversational words: never part of a street or town name
STOP = frozenset(
    "a an the of in on at to for from by with and or but nor is are was were be been being am i you he she it we they me my "
    "your our their his her its this that these those there here what which who whom when where how why not no yes so if then "
    "than just only also very too about up down out over under off into onto near do does did done have has had will would can "
    "could should may might must shall go going get got like um uh er erm hmm please thanks thank okay ok yeah yep right now "
    "today tomorrow yesterday tonight again still some any all every each other another more most less much many few one ones "
    "i'm it's that's there's i've you're we're they're he's she's isn't don't can't won't didn't let's ago after before since "
    "until till while because though although via per number call phone zip code postcode email".split()
)
# the word right before a house number that makes it another kind of number
BLOCK_BEFORE = frozenset(
    "a an the my your his her our their flight room gate floor level page order orders item items bus route platform exit "
    "terminal seat chapter section ticket case table line channel track version model option press extension ext ref reference "
    "invoice account card pin zip code postcode about around approximately nearly almost over under only just like every each "
    "per another other first last next top those these than plus minus times x $ £ € aged age year years grade class step".split()
)
DIGIT_JOINERS = frozenset("- : . / + ,".split())  # "10:30", "1.5", "3/4", "12-14" (the second number)
SENT_END = frozenset(". ! ? ;".split()) | {""}  # "": the end of the text
PC_CUES = (("postcode",), ("postcodes",), ("postcode's",), ("post", "code"), ("postal", "code"), ("post", "code's"))
ZIP_CUES = (("zip",), ("zip", "code"), ("zipcode",), ("zip", "code's"))
_CUE_FIRST = frozenset(p[0] for p in PC_CUES + ZIP_CUES)
ID_CUES = frozenset("reference ref order booking confirmation ticket case member membership id policy account serial "
                    "tracking claim invoice transaction model part flight".split())
CUE_FILLERS = frozenset("is it's its was it that's be would will should the my um uh er erm : , of".split())

US_STATES = frozenset(
    "alabama alaska arizona arkansas california colorado connecticut delaware florida georgia hawaii idaho illinois "
    "indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota mississippi missouri "
    "montana nebraska nevada ohio oklahoma oregon pennsylvania tennessee texas utah vermont virginia washington "
    "wisconsin wyoming".split()
) | frozenset(
    ("new hampshire", "new jersey", "new mexico", "new york", "north carolina", "north dakota", "south carolina",
     "south dakota", "west virginia", "rhode island", "district of columbia", "washington dc", "puerto rico")
)
US_STATE_CODES = frozenset(
    "al ak az ar ca co ct de dc fl ga hi id il in ia ks ky la me md ma mi mn ms mo mt ne nv nh nj nm ny nc nd oh ok or pa pr ri "
    "sc sd tn tx ut vt va wa wv wi wy".split()
)
# lower-case codes that are also words or abbreviations: taken only before a ZIP
AMBIGUOUS_CODES = frozenset("al ar co ct de dc hi id in la ma me mo ms mt nd ne oh ok or pa sc va wa ga".split())

UK_POSTCODE_AREAS = frozenset(
    "AB AL B BA BB BD BF BH BL BN BR BS BT BX CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN DT DY E EC EH EN EX FK FY G GL "
    "GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT KW KY L LA LD LE LL LN LS LU M ME MK ML N NE NG NN NP NR NW OL OX PA PE "
    "PH PL PO PR RG RH RM S SA SE SG SK SL SM SN SO SP SR SS ST SW SY TA TD TF TN TQ TR TS TW UB W WA WC WD WF WN WR WS WV YO "
    "ZE".split()
)
# only central London districts end in a letter: E1W, N1C, W1A, EC1A, SW1A, SE1P, NW1W, WC2H
UK_LETTER_DISTRICT_AREAS = frozenset("E N W EC SW SE NW WC".split())
# spoken digits the normalizer leaves as words ("a one a a": "one" after "a" reads as a pronoun)
PC_DIGIT_WORDS = {"zero": "0", "oh": "0", "nought": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                  "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}

# ------------------------------------------------------------------------ token shapes (anchored, bounded)
_TOKEN = re.compile(r"[A-Za-z0-9]{1,64}(?:['\u2019][A-Za-z]{1,3})?|[^\sA-Za-z0-9]")
_HOUSE_NUM = re.compile(r"[1-9][0-9]{0,5}[a-z]?")
_ORDINAL = re.compile(r"[0-9]{1,3}(?:st|nd|rd|th)")
_WORD = re.compile(r"[a-z]{1,30}(?:'[a-z]{1,3})?")
_UNIT_ID = re.compile(r"[0-9]{1,5}[a-z]{0,2}|[a-z]{1,2}[0-9]{1,4}|[b-hj-z]")
_ZIP = re.compile(r"[0-9]{5}(?:[0-9]{4})?")
_ZIP4 = re.compile(r"[0-9]{4}")
_PC_SHAPE = re.compile(r"([A-Z]{1,2})([0-9][A-Z0-9]?) ?([0-9][ABD-HJLNP-UW-Z]{2})")
_ALNUM = re.compile(r"[A-Za-z0-9]{1,7}")


def uk_postcode_ok(s: str) -> bool:
    """A UK postcode by structure (outward ``A9 A99 AA9 AA99 A9A AA9A``, inward ``9AA`` without
    C I K M O V) whose area letters are a real postcode area."""
    s = s.strip().upper()
    m = _PC_SHAPE.fullmatch(s) if len(s) <= 8 else None
    if m is None:
        return s in ("GIR0AA", "GIR 0AA")  # Girobank's, the one postcode outside the pattern
    area, district = m.group(1), m.group(2)
    return area in UK_POSTCODE_AREAS and (district[-1].isdigit() or area in UK_LETTER_DISTRICT_AREAS)


def _name_word(w: str) -> bool:
    if _ORDINAL.fullmatch(w):
        return True
    return _WORD.fullmatch(w) is not None and w not in STOP and w not in UNIT_WORDS and w not in MEASURE


def _city_word(w: str) -> bool:
    return len(w) > 1 and _WORD.fullmatch(w) is not None and w not in STOP and w not in UNIT_WORDS


class _Toks:
    """The text as tokens: words (with an apostrophe tail), digit runs and single symbols."""

    __slots__ = ("starts", "ends", "raw", "low", "n")

    def __init__(self, text: str) -> None:
        ms = list(_TOKEN.finditer(text.replace("\u2019", "'")))
        self.starts = [m.start() for m in ms]
        self.ends = [m.end() for m in ms]
        self.raw = [m.group() for m in ms]
        self.low = [r.lower() for r in self.raw]
        self.n = len(ms)

    def at(self, k: int) -> str:
        return self.low[k] if 0 <= k < self.n else ""

    def cue(self, k: int, phrases: tuple[tuple[str, ...], ...]) -> int | None:
        """Index after the longest of ``phrases`` at ``k`` and the fillers after it ("postcode is um")."""
        if self.at(k) not in _CUE_FIRST:
            return None
        ends = [k + len(p) for p in phrases if all(self.at(k + d) == w for d, w in enumerate(p))]
        if not ends:
            return None
        k = max(ends)
        for _ in range(4):
            k += self.at(k) in CUE_FILLERS
        return k


def _type_is_word(t: _Toks, k: int) -> bool:
    """"12 oak close to the station": here the type word is a verb or adverb."""
    return t.low[k] in TYPE_AS_WORD and t.at(k + 1) in TYPE_AS_WORD_NEXT


# ------------------------------------------------------------------------ UK postcodes over tokens
def _pc_unit(t: _Toks, k: int, upper_only: bool) -> tuple[tuple[str, ...], int] | None:
    """The readings of the postcode piece at ``k`` ("SW1A", "s", "34", "one", "o", "double a")."""
    w = t.at(k)
    if w == "double" and k + 1 < t.n:
        x = PC_DIGIT_WORDS.get(t.low[k + 1], t.raw[k + 1].upper())
        if len(x) == 1 and x.isalnum() and x.isascii():
            return ((x * 2, "W") if x == "U" else (x * 2,)), k + 2
        return None
    if w in PC_DIGIT_WORDS or w == "o":  # "o": the letter or zero
        return (("O", "0") if w == "o" else (PC_DIGIT_WORDS[w],)), k + 1
    raw = t.raw[k] if k < t.n else ""
    if _ALNUM.fullmatch(raw) and not (upper_only and raw != raw.upper()):
        return (raw.upper(),), k + 1
    return None


def _postcode_end(t: _Toks, i: int, spaced: bool, upper_only: bool = False) -> int | None:
    """Token index after the longest valid UK postcode starting at ``i``.

    Written (``spaced=False``): one or two tokens, the first holding letters and digits
    ("SW1A 1AA", "SW34UD").  Spaced: up to 8 pieces, a pause allowed between two
    ("s w 1 a, 1 a a").  Readings are joined and checked; a postcode is at most 7 characters,
    so the candidate set stays tiny."""
    if not spaced and not (_ALNUM.fullmatch(t.raw[i]) and t.raw[i][0].isalpha() and any(c.isdigit() for c in t.raw[i])):
        return None
    frontier, best, k, pieces = {""}, None, i, 0
    while k < t.n and pieces < 8:
        if spaced and pieces and t.low[k] in (",", "-") and k + 1 < t.n:
            k += 1
        got = _pc_unit(t, k, upper_only)
        if got is None or (not spaced and not _ALNUM.fullmatch(t.raw[k])):
            break
        alts, k = got
        frontier = {s + a for s in frontier for a in alts if len(s) + len(a) <= 7}
        if not frontier:
            break
        pieces += 1
        if any(len(s) >= 5 and uk_postcode_ok(s) for s in frontier):
            best = k
        if not spaced and pieces == 2:
            break
    return best


# ------------------------------------------------------------------------ the recognizer
class AddressRecognizer(LocalRecognizer):
    """Street addresses (number + name + type, unit, town, state, ZIP or postcode), PO boxes,
    and UK postcodes written or spoken after a cue."""

    ENTITIES = [ADDRESS]

    def __init__(self) -> None:
        super().__init__(supported_entities=[ADDRESS], name="AddressRecognizer", supported_language="en")

    def load(self) -> None:
        """Nothing to load: word lists and patterns are module constants."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        if entities and ADDRESS not in entities:
            return []
        t = _Toks(text)
        out: list[RecognizerResult] = []
        i = 0
        while i < t.n:
            found = self._at(t, i)
            if found is None:
                i += 1
                continue
            s, e, score = found
            a, b = t.starts[s], t.ends[e - 1]
            meta = {RecognizerResult.RECOGNIZER_NAME_KEY: self.name, RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    "value": " ".join(text[a:b].lower().split())}
            out.append(RecognizerResult(ADDRESS, a, b, score, recognition_metadata=meta))
            i = e
        return out

    def _at(self, t: _Toks, i: int) -> tuple[int, int, float] | None:
        """The address that starts at token ``i``: (first token, token after the last, score)."""
        w = t.low[i]
        if w in UNIT_FIRST:  # "flat 2, 14 kings road"
            u = self._unit_end(t, i)
            if u is not None:
                h = self._house(t, u + (t.at(u) == ","), after_unit=True)
                if h is not None:
                    return i, h[0], h[1]
        if w[:1].isdigit():
            h = self._house(t, i)
            if h is not None:
                return (i - 1 if t.at(i - 1) in UNIT_FIRST else i), h[0], h[1]
            return None
        if w in ("po", "p", "post"):
            e = self._po_box(t, i)
            if e is not None:
                return i, e, SCORE_STREET
        c = t.cue(i, PC_CUES)
        if c is not None:
            e = _postcode_end(t, c, spaced=True) if c < t.n else None
            if e is not None:
                return c, e, SCORE_POSTCODE
        if any(t.at(i - d) in ID_CUES for d in (1, 2, 3)):
            return None  # "booking reference AB1 2CD": an identifier shaped like a postcode
        e = _postcode_end(t, i, spaced=False)
        if e is not None:
            return i, e, SCORE_POSTCODE
        e = _postcode_end(t, i, spaced=True, upper_only=True) if len(t.raw[i]) == 1 and t.raw[i].isupper() else None
        return (i, e, SCORE_WEAK) if e is not None else None

    # -- street part
    def _house(self, t: _Toks, i: int, after_unit: bool = False) -> tuple[int, float] | None:
        """House number (or range "12-14", "12 14") + street from ``i``: (token after the end, score)."""
        w, p = t.at(i), t.at(i - 1)  # a flight, room, amount, time ... number, not a house number:
        if not after_unit and (p in BLOCK_BEFORE or (p in DIGIT_JOINERS and t.at(i - 2)[-1:].isdigit())):
            return None
        if not _HOUSE_NUM.fullmatch(w) or (w in TENS and t.at(i + 1) in ORDINAL_WORDS):
            return None  # "on 40 second street": a street name, no house number
        starts = [i + 1]
        if t.at(i + 1) == "-" and _HOUSE_NUM.fullmatch(t.at(i + 2)):
            starts.append(i + 3)
        elif t.at(i + 1).isdigit() and len(t.at(i + 1)) == len(w.rstrip("abcdefghijklmnopqrstuvwxyz")) < 4:
            starts.append(i + 2)
        for j in reversed(starts):
            e = self._street(t, j)
            if e is not None:
                return self._tail(t, e), SCORE_STREET
        best = None  # no street type: only with a state + ZIP or a postcode after it
        for j in starts:
            for n_names in range(1, 4):
                if not all(_name_word(t.at(j + d)) for d in range(n_names)) or t.at(j + n_names - 1)[-1:] == "s":
                    break  # a plural is a count ("12 units, texas 75001"), not a street
                e = self._place(t, j + n_names, strong=True)
                if e is not None and (best is None or e > best):
                    best = e
        return (best, SCORE_WEAK) if best is not None else None

    def _street(self, t: _Toks, j: int) -> int | None:
        """Token after the street type of the name starting at ``j`` (at most 6 name words)."""
        names, k = 0, j
        while k < t.n and names <= 6:
            w = t.low[k]
            if w == "." and k > j and len(t.low[k - 1]) <= 3 and t.low[k - 1].isalpha():
                k += 1  # "st. james", "mt. pleasant"
                continue
            if names == 0 and w in SELF_TYPED:
                return k + 1
            if names == 0 and w == "the" and t.at(k + 1) in THE_TYPES:
                return k + 2
            if w in TENS and t.at(k + 1) in ORDINAL_WORDS:
                k += 1  # "345 west 40 second street"
                w = t.low[k]
            elif not _name_word(w):
                return None
            if names and w in STREET_TYPES and t.low[j] not in NOT_FIRST_NAME:
                if not _type_is_word(t, k):
                    k += 1
                    while t.at(k) in STREET_TYPES and not _type_is_word(t, k) and k - j < 8:
                        k += 1  # "2 hill view close", "14 church hill road"
                    return k
            names += 1
            k += 1
        return None

    def _tail(self, t: _Toks, k: int) -> int:
        """The furthest end among the readings of direction, unit and town/state/ZIP/postcode after ``k``."""
        best = k
        for k1 in self._directions(t, k):
            for k2 in (k1, self._unit_end(t, k1 + (t.at(k1) == ","))):
                if k2 is None:
                    continue
                p = self._place(t, k2)
                best = max(best, k2, p or 0)
        return best

    def _directions(self, t: _Toks, k: int) -> Iterator[int]:
        yield k
        w = t.at(k)
        if w not in DIRECTIONS or t.at(k + 1) == "of":
            return
        yield k + 1
        if len(w) <= 2 and t.at(k + 1) == "." and t.at(k + 2) != "":
            yield k + 2  # "main st n. springfield": the dot is part of it
        elif w in ("north", "south") and t.at(k + 1) in ("east", "west") and t.at(k + 2) != "of":
            yield k + 2

    def _unit_end(self, t: _Toks, k: int) -> int | None:
        """Token after "apartment 4 b", "apt 12", "suite 300", "flat 2", "#12", "unit b4" at ``k``."""
        if t.at(k) not in UNIT_WORDS:
            return None
        k += 1 + (t.at(k + 1) == ".")  # "apt. 4"
        if t.at(k) in UNIT_NUMBER:  # "apartment number 4", "flat no. 2"
            k += 1 + (t.at(k + 1) == ".")
        w = t.at(k)
        if not _UNIT_ID.fullmatch(w):
            return None
        k += 1
        nxt = t.at(k)
        if w.isdigit() and len(nxt) == 1 and nxt.isalpha() and nxt != "i":
            if nxt != "a" or t.at(k + 1) not in A_ARTICLE_NEXT:
                k += 1  # "apartment 4 b"
        return k

    def _po_box(self, t: _Toks, i: int) -> int | None:
        """Token after "po box 123" / "p.o. box 123" / "post office box 123" and its town/ZIP."""
        letters, j = "", i
        while j < t.n and j - i < 5 and t.low[j] != "box":
            letters += "" if t.low[j] == "." else t.low[j]
            j += 1
        if letters not in ("po", "postoffice") or t.at(j) != "box" or not t.at(j + 1).isdigit() or len(t.at(j + 1)) > 7:
            return None
        e = j + 2
        return max(e, self._place(t, e) or 0)

    # -- town, state, ZIP, postcode
    def _place(self, t: _Toks, k: int, strong: bool = False) -> int | None:
        """Token after ", town, state ZIP" / ", town, postcode" at ``k``; ``strong``: only a
        state + ZIP or a postcode will do (no street type was said)."""
        comma = t.at(k) == ","
        j = k + comma
        best: int | None = None
        c, towns = j, 0
        while True:
            e = self._after_town(t, c, towns, comma, strong)
            if e is not None and (best is None or e > best):
                best = e
            if towns == 3:
                break
            nxt = c + (towns > 0 and t.at(c) in (",", "-"))  # "guildford, surrey", "stratford-upon-avon"
            if not _city_word(t.at(nxt)):
                break
            c, towns = nxt + 1, towns + 1
        return best

    def _after_town(self, t: _Toks, c: int, towns: int, comma: bool, strong: bool) -> int | None:
        j = c + (towns > 0 and t.at(c) == ",")
        ends: list[int] = []
        s = self._state(t, j)
        if s is not None:
            z = self._code_end(t, s[0] + (t.at(s[0]) == ","), zip_ok=True)
            if z is not None:
                ends.append(z)
            elif not s[1] and not strong:
                ends.append(s[0])
        e = self._code_end(t, j, zip_ok=not strong)
        if e is not None:
            ends.append(e)
        if towns and comma and not strong and t.at(c) in SENT_END:
            ends.append(c)
        return max(ends) if ends else None

    def _code_end(self, t: _Toks, j: int, zip_ok: bool) -> int | None:
        """Token after a ZIP or UK postcode at ``j``, its cue allowed first ("zip code 62704", "postcode sw3 4ud")."""
        j = t.cue(j, PC_CUES + ZIP_CUES) or j
        ends = [e for e in (self._zip(t, j) if zip_ok else None, _postcode_end(t, j, spaced=True)) if e is not None]
        return max(ends) if ends else None

    def _state(self, t: _Toks, j: int) -> tuple[int, bool] | None:
        """(token after a US state name or code at ``j``, whether a ZIP must follow)."""
        for n_words in (3, 2, 1):
            if " ".join(t.at(j + d) for d in range(n_words)) in US_STATES:
                return j + n_words, False
        w = t.at(j)
        if w not in US_STATE_CODES:
            return None
        if t.raw[j].isupper():
            return j + 1, False
        return j + 1, w in AMBIGUOUS_CODES or t.at(j + 1) not in SENT_END

    def _zip(self, t: _Toks, j: int) -> int | None:
        """Token after a 5- or 9-digit ZIP ("62704", "62704-1234", "62704 1234", "627041234")."""
        w = t.at(j)
        if not _ZIP.fullmatch(w) or len(w) == 9:
            return j + 1 if _ZIP.fullmatch(w) else None
        if t.at(j + 1) == "-" and _ZIP4.fullmatch(t.at(j + 2)):
            return j + 3
        return j + 2 if _ZIP4.fullmatch(t.at(j + 1)) else j + 1

