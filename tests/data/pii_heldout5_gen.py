#!/usr/bin/env python3
"""Generator for pii_heldout5.jsonl -- an independent held-out PII test set.
Why this module is long: it is the set itself, 335 utterances written piece by piece, with the checksums.

Standalone, stdlib only, fixed seed.  Every utterance is assembled from
pieces (plain strings and entity pieces) so that offsets are computed, never
typed.  All identifiers are made up but checksum-valid (Luhn, ABA, IBAN
mod-97, NHS mod-11, MBI / NINO / SSN format rules).

Usage:  python3 pii_heldout5_gen.py   (writes pii_heldout5.jsonl next to it)
"""
import calendar
import json
import os
import re
from collections import Counter, defaultdict
import random

SEED = 505050
R = random.Random(SEED)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pii_heldout5.jsonl")

# ---------------------------------------------------------------------------
# number / letter speech helpers
# ---------------------------------------------------------------------------
DIGITS = "0123456789"
DW = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
         "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]
ORD = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth",
       7: "seventh", 8: "eighth", 9: "ninth", 10: "tenth", 11: "eleventh", 12: "twelfth",
       13: "thirteenth", 14: "fourteenth", 15: "fifteenth", 16: "sixteenth",
       17: "seventeenth", 18: "eighteenth", 19: "nineteenth", 20: "twentieth",
       30: "thirtieth"}
PHON = {"A": "apple", "B": "boy", "C": "charlie", "D": "david", "E": "edward", "F": "frank",
        "G": "george", "H": "harry", "J": "john", "K": "king", "L": "lima", "M": "mary",
        "N": "nancy", "P": "peter", "Q": "queen", "R": "robert", "S": "sam", "T": "tom",
        "U": "uniform", "V": "victor", "W": "william", "X": "x-ray", "Y": "yellow",
        "Z": "zebra", "O": "oscar", "I": "india"}


def n2w(n, hyphen=False):
    if n < 10:
        return DW[n]
    if n < 20:
        return TEENS[n - 10]
    if n < 100:
        t, o = divmod(n, 10)
        return TENS[t] + ((("-" if hyphen else " ") + DW[o]) if o else "")
    if n < 1000:
        h, r = divmod(n, 100)
        return DW[h] + " hundred" + ((" " + n2w(r)) if r else "")
    raise ValueError(n)


def ordw(n, hyphen=False):
    if n in ORD:
        return ORD[n]
    t, o = divmod(n, 10)
    return TENS[t] + ("-" if hyphen else " ") + ORD[o]


def dword(c, zero="oh"):
    return zero if c == "0" else DW[int(c)]


def sd(s, zero="oh", sep=" "):
    """say digits one by one"""
    return sep.join(dword(c, zero) for c in s)


def sgroups(groups, zero="oh", gsep=", "):
    return gsep.join(sd(g, zero) for g in groups)


def pair(s2):
    """two digits as a number: '07' -> 'oh seven', '41' -> 'forty one'"""
    if s2[0] == "0":
        return "oh " + ("oh" if s2[1] == "0" else DW[int(s2[1])])
    return n2w(int(s2))


def spairs(s, sep=" "):
    out = []
    i = 0
    if len(s) % 2:
        out.append(dword(s[0]))
        i = 1
    while i < len(s):
        out.append(pair(s[i:i + 2]))
        i += 2
    return sep.join(out)


def sdouble(s, zero="oh"):
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if i + 2 < len(s) and s[i + 1] == c and s[i + 2] == c:
            out.append("triple " + dword(c, zero))
            i += 3
        elif i + 1 < len(s) and s[i + 1] == c:
            out.append("double " + dword(c, zero))
            i += 2
        else:
            out.append(dword(c, zero))
            i += 1
    return " ".join(out)


def say_alnum(s, zero="oh", upper=True, sep=" "):
    out = []
    for ch in s:
        if ch.isdigit():
            out.append(dword(ch, zero))
        elif ch.isalpha():
            out.append(ch.upper() if upper else ch.lower())
    return sep.join(out)


def yw(y, variant=0):
    """year in words"""
    if 1900 <= y <= 1999:
        r = y % 100
        if r == 0:
            return "nineteen hundred"
        if r < 10:
            return "nineteen oh " + DW[r]
        return "nineteen " + n2w(r)
    if 2000 <= y <= 2009:
        r = y % 100
        if r == 0:
            return "two thousand"
        return ("two thousand and " if variant % 2 else "two thousand ") + DW[r]
    if 2010 <= y <= 2099:
        if variant % 2:
            return "two thousand " + n2w(y % 100)
        return "twenty " + n2w(y % 100)
    raise ValueError(y)


def chunks(s, n):
    return [s[i:i + n] for i in range(0, len(s), n)]


def rdig(n):
    return "".join(R.choice(DIGITS) for _ in range(n))


def title(s):
    out = []
    cap = True
    for ch in s:
        out.append(ch.upper() if cap and ch.isalpha() else ch)
        cap = ch in " -'"
    r = "".join(out)
    return r.replace("Mcallister", "McAllister").replace("De La ", "de la ").replace("Van Der ", "van der ")


# ---------------------------------------------------------------------------
# checksums / validators (written from the public definitions)
# ---------------------------------------------------------------------------
def luhn_ok(s):
    tot = 0
    for i, c in enumerate(reversed(s)):
        d = int(c)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        tot += d
    return tot % 10 == 0


def luhn_make(prefix, length):
    body = prefix + rdig(length - len(prefix) - 1)
    for c in DIGITS:
        if luhn_ok(body + c):
            return body + c
    raise AssertionError


def gen_card(issuer):
    if issuer == "visa":
        return luhn_make("4", 16)
    if issuer == "mastercard":
        p = str(R.randint(51, 55)) if R.random() < 0.6 else str(R.randint(2221, 2720))
        return luhn_make(p, 16)
    if issuer == "amex":
        return luhn_make(R.choice(["34", "37"]), 15)
    if issuer == "discover":
        p = R.choice(["6011", "65", str(R.randint(644, 649))])
        return luhn_make(p, 16)
    raise ValueError(issuer)


def card_ok(num, issuer):
    if not luhn_ok(num):
        return False
    if issuer == "visa":
        return num[0] == "4" and len(num) == 16
    if issuer == "mastercard":
        return len(num) == 16 and (51 <= int(num[:2]) <= 55 or 2221 <= int(num[:4]) <= 2720)
    if issuer == "amex":
        return len(num) == 15 and num[:2] in ("34", "37")
    if issuer == "discover":
        return len(num) == 16 and (num[:4] == "6011" or num[:2] == "65" or 644 <= int(num[:3]) <= 649)
    return False


def gen_ssn():
    while True:
        a = R.randint(1, 899)
        if a != 666:
            break
    return "%03d%02d%04d" % (a, R.randint(1, 99), R.randint(1, 9999))


def ssn_ok(s):
    return (len(s) == 9 and s.isdigit() and s[:3] not in ("000", "666") and s[0] != "9"
            and s[3:5] != "00" and s[5:] != "0000")


ABA_W = [3, 7, 1, 3, 7, 1, 3, 7, 1]
ABA_PREFIX = ["%02d" % i for i in list(range(1, 13)) + list(range(21, 33))]


def gen_aba():
    body = R.choice(ABA_PREFIX) + rdig(6)
    s = sum(int(c) * w for c, w in zip(body, ABA_W))
    return body + str((10 - s % 10) % 10)


def aba_ok(s):
    return len(s) == 9 and sum(int(c) * w for c, w in zip(s, ABA_W)) % 10 == 0


def _iban_num(s):
    return int("".join(str(int(ch, 36)) for ch in s))


def iban_check(cc, bban):
    return "%02d" % (98 - _iban_num(bban + cc + "00") % 97)


def iban_ok(iban):
    return _iban_num(iban[4:] + iban[:4]) % 97 == 1


IBAN_LEN = {"GB": 22, "IE": 22, "DE": 22, "NL": 18, "FR": 27, "ES": 24}
GB_SORT = {"NWBK": "60", "BARC": "20", "MIDL": "40", "LOYD": "30", "HBUK": "40"}
IE_SORT = {"AIBK": "93", "BOFI": "90"}


def nl_account():
    w = list(range(10, 0, -1))
    while True:
        body = str(R.randint(1, 9)) + rdig(8)
        s = sum(int(c) * x for c, x in zip(body, w))
        d = (-s) % 11
        if d < 10:
            acct = body + str(d)
            assert sum(int(c) * x for c, x in zip(acct, w)) % 11 == 0
            return acct


def es_dc(s10):
    w = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]
    d = 11 - sum(int(c) * x for c, x in zip(s10, w)) % 11
    return "0" if d == 11 else ("1" if d == 10 else str(d))


def gen_iban(cc, bank=None):
    if cc == "GB":
        bank = bank or R.choice(list(GB_SORT))
        bban = bank + GB_SORT[bank] + rdig(4) + rdig(8)
    elif cc == "IE":
        bank = bank or R.choice(list(IE_SORT))
        bban = bank + IE_SORT[bank] + rdig(4) + rdig(8)
    elif cc == "DE":
        bban = str(R.randint(1, 8)) + rdig(7) + rdig(10)
    elif cc == "NL":
        bank = bank or R.choice(["ABNA", "INGB", "RABO"])
        bban = bank + nl_account()
    elif cc == "FR":
        b = R.choice(["30004", "20041", "30003", "10107", "30002"])
        g = rdig(5)
        c = rdig(11)
        key = 97 - ((89 * int(b) + 15 * int(g) + 3 * int(c)) % 97)
        bban = b + g + c + "%02d" % key
    elif cc == "ES":
        b = R.choice(["2100", "0049", "0182", "2085"])
        br = rdig(4)
        acct = rdig(10)
        bban = b + br + es_dc("00" + b + br) + es_dc(acct) + acct
    else:
        raise ValueError(cc)
    iban = cc + iban_check(cc, bban) + bban
    assert len(iban) == IBAN_LEN[cc] and iban_ok(iban), iban
    return iban


MBI_L = "ACDEFGHJKMNPQRTUVWXY"  # A-Z minus S L O I B Z
MBI_RE = re.compile(r"^[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9][0-9][AC-HJKMNP-RT-Y]"
                    r"[AC-HJKMNP-RT-Y0-9][0-9][AC-HJKMNP-RT-Y]{2}[0-9]{2}$")


def gen_mbi():
    c = [""] * 11
    c[0] = str(R.randint(1, 9))
    for i in (1, 4, 7, 8):
        c[i] = R.choice(MBI_L)
    for i in (2, 5):
        c[i] = R.choice(MBI_L + DIGITS)
    for i in (3, 6, 9, 10):
        c[i] = R.choice(DIGITS)
    m = "".join(c)
    assert MBI_RE.match(m), m
    return m


def nhs_check(body):
    s = sum(int(c) * w for c, w in zip(body, range(10, 1, -1)))
    chk = 11 - s % 11
    if chk == 11:
        chk = 0
    return chk


def gen_nhs():
    while True:
        body = R.choice("469") + rdig(8)
        chk = nhs_check(body)
        if chk != 10:
            return body + str(chk)


def nhs_ok(s):
    return len(s) == 10 and s.isdigit() and nhs_check(s[:9]) == int(s[9])


NINO_BANNED = ["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"]
NINO_PREFIXES = ["AB", "JG", "NE", "PW", "CE", "HR", "SK", "TM", "WL", "YA", "EH", "LP", "RJ", "MA"]


def nino_ok(n):
    return (len(n) == 9 and n[0] not in "DFIQUV" and n[1] not in "DFIOQUV"
            and n[:2] not in NINO_BANNED and n[2:8].isdigit() and n[8] in "ABCD")


def gen_nino():
    n = R.choice(NINO_PREFIXES) + rdig(6) + R.choice("ABCD")
    assert nino_ok(n), n
    return n


# ---------------------------------------------------------------------------
# utterance building
# ---------------------------------------------------------------------------
def E(typ, surface, form, pre="", post=""):
    return {"typ": typ, "s": surface, "form": form, "pre": pre, "post": post}


SLOT = re.compile(r"\{(\w+)\}")


def fill(tmpl, **kw):
    parts = []
    pos = 0
    for m in SLOT.finditer(tmpl):
        parts.append(tmpl[pos:m.start()])
        parts.append(kw[m.group(1)])
        pos = m.end()
    parts.append(tmpl[pos:])
    return [p for p in parts if not (isinstance(p, str) and p == "")]


def build(parts):
    text = ""
    ents = []
    for p in parts:
        if isinstance(p, str):
            text += p
        else:
            text += p["pre"]
            st = len(text)
            text += p["s"]
            ents.append({"type": p["typ"], "start": st, "end": len(text), "form": p["form"],
                         "_surface": p["s"]})
            text += p["post"]
    return text, ents


def sentence_case(parts):
    """capitalise the first letter and add a full stop, touching only plain text."""
    parts = list(parts)
    if parts and isinstance(parts[0], str) and parts[0][:1].isalpha():
        parts[0] = parts[0][0].upper() + parts[0][1:]
    if parts and isinstance(parts[-1], str):
        if parts[-1][-1:].isalnum():
            parts[-1] = parts[-1] + "."
    else:
        parts.append(".")
    return parts


RECS = []


def add(group, parts, form=None):
    ents_forms = [p["form"] for p in parts if not isinstance(p, str)]
    if form is None:
        form = "spoken" if "spoken" in ents_forms else "written"
    RECS.append({"group": group, "form": form, "parts": parts})


# ---------------------------------------------------------------------------
# value generators: each returns (entity piece, extra template slots)
# ---------------------------------------------------------------------------
CNT = defaultdict(int)


def nxt(key):
    k = CNT[key]
    CNT[key] += 1
    return k


ISSUERS = ["visa", "mastercard", "amex", "discover", "visa", "mastercard", "discover", "visa"]
ISS_ART = {"visa": "a visa", "mastercard": "a mastercard", "amex": "an amex", "discover": "a discover"}


def v_card(form, **o):
    k = nxt(("CC", form))
    iss = o.get("issuer") or ISSUERS[(k * 3 + (form == "spoken")) % len(ISSUERS)]
    num = gen_card(iss)
    assert card_ok(num, iss)
    g = [num[:4], num[4:10], num[10:]] if len(num) == 15 else chunks(num, 4)
    if form == "written":
        s = [" ".join(g), "-".join(g), "".join(g), " ".join(g)][k % 4]
    else:
        s = [sgroups(g, "oh"), " ".join(sd(x, "zero") for x in g),
             ", ".join(spairs(x) for x in g), ", ".join(sdouble(x, "oh") for x in g),
             " ".join(sd(x, "oh") for x in g)][k % 5]
    return E("CREDIT_CARD", s, form), {"iss": ISS_ART[iss], "issb": iss}


def v_ssn(form, **o):
    k = nxt(("SSN", form))
    n = gen_ssn()
    assert ssn_ok(n)
    a, g, s_ = n[:3], n[3:5], n[5:]
    if form == "written":
        s = ["%s-%s-%s" % (a, g, s_), "%s %s %s" % (a, g, s_), n][k % 3]
    else:
        s = [sgroups([a, g, s_]), sd(n, "zero"),
             sd(a) + ", " + pair(g) + ", " + spairs(s_),
             ", ".join(sdouble(x) for x in (a, g, s_))][k % 4]
    return E("US_SSN", s, form), {}


US_AREAS = ["212", "415", "312", "617", "646", "773", "206", "404", "713", "303", "215", "503"]


def gen_us_phone():
    a = R.choice(US_AREAS)
    while True:
        ex = str(R.randint(2, 9)) + rdig(2)
        if ex[1:] != "11" and ex != "555":
            break
    return a, ex, rdig(4)


def v_phone(form, **o):
    k = nxt(("PH", form))
    kind = o.get("kind") or ["us", "uk_mob", "us", "uk_land", "us", "uk_mob"][k % 6]
    j = nxt(("PH", form, kind))
    if kind == "us":
        a, ex, ln = gen_us_phone()
        if form == "written":
            s = ["%s-%s-%s" % (a, ex, ln), "%s.%s.%s" % (a, ex, ln), "+1 %s %s %s" % (a, ex, ln),
                 a + ex + ln, "1-%s-%s-%s" % (a, ex, ln), "%s %s %s" % (a, ex, ln)][j % 6]
            return E("PHONE_NUMBER", s, form), {}
        st = j % 4
        if st == 0:
            return E("PHONE_NUMBER", sgroups([a, ex, ln]), form), {}
        if st == 1:
            return E("PHONE_NUMBER", sd(a) + ", " + sd(ex) + ", " + spairs(ln), form, pre="area code "), {}
        if st == 2:
            return E("PHONE_NUMBER", sd(a + ex + ln, "zero"), form), {}
        return E("PHONE_NUMBER", " ".join(sdouble(x) for x in (a, ex, ln)), form), {}
    if kind == "uk_mob":
        p = R.choice(["911", "723", "480", "985", "534", "403"])
        rest = rdig(6)
        if form == "written":
            s = ["07%s %s" % (p, rest), "+44 7%s %s" % (p, rest), "07%s%s" % (p, rest)][j % 3]
            return E("PHONE_NUMBER", s, form), {}
        st = j % 3
        if st == 0:
            return E("PHONE_NUMBER", sd("07" + p) + ", " + sd(rest[:3]) + ", " + sd(rest[3:]), form), {}
        if st == 1:
            return E("PHONE_NUMBER", "plus four four, " + sd("7" + p) + ", " + sd(rest), form), {}
        return E("PHONE_NUMBER", sdouble("07" + p) + " " + sdouble(rest), form), {}
    # uk_land: London 020 7xxx xxxx / 020 8xxx xxxx
    b = R.choice("78") + rdig(3)
    c = rdig(4)
    if form == "written":
        s = ["020 %s %s" % (b, c), "+44 20 %s %s" % (b, c)][j % 2]
        return E("PHONE_NUMBER", s, form), {}
    s = ["oh two oh, " + sd(b) + ", " + sd(c), "oh two oh " + sd(b, "zero") + " " + spairs(c)][j % 2]
    return E("PHONE_NUMBER", s, form), {}


FIRST = ["priya", "mark", "maria", "robert", "aisha", "wei", "olusegun", "siobhan", "tomasz",
         "hiroshi", "fatima", "diego", "ngozi", "anders", "lakshmi", "kwame", "yusuf", "mei",
         "giovanni", "ines", "dmitri", "aaliyah", "caoimhe", "rahul", "thanh", "beatriz", "emeka",
         "sven", "noura", "declan", "keisha", "arjun"]
LAST = ["patel", "o'neill", "garcia", "chen", "kowalski", "nguyen", "okafor", "mcallister",
        "haddad", "rossi", "yamamoto", "fernandes", "schultz", "abernathy", "adeyemi", "brennan",
        "sokolov", "whitfield", "al-masri", "osei", "de la cruz", "van der berg", "nakamura",
        "lindqvist", "iyer", "mensah", "moreau", "delgado", "kaur", "walsh", "okonkwo", "hughes"]
R.shuffle(LAST)
NAMES = [(FIRST[i], LAST[i]) for i in range(len(FIRST))]


def v_name(form, **o):
    """written PERSON = the name as words; spoken PERSON = spelled letter by letter."""
    if form == "written":
        k = nxt(("NAME", "w"))
        f, l = NAMES[k % len(NAMES)]
        s = "%s %s" % (f, l)
        if k % 3 == 1:
            s = title(s)
        return E("PERSON", s, "written"), {"first": f, "last": l}
    k = nxt(("NAME", "s"))
    specs = [("kowalski", 0), ("nguyen", 1), ("okafor", 2), ("haddad", 3), ("mcallister", 4),
             ("o'neill", 5), ("schultz", 1), ("lindqvist", 0), ("mensah", 2), ("iyer", 3),
             ("moreau", 0), ("delgado", 1), ("brennan", 4), ("walsh", 2)]
    name, st = specs[k % len(specs)]
    if "last" in o:
        name = o["last"]
        st = 0 if "'" not in name and " " not in name and "-" not in name else 5
        if st == 5 and "'" not in name:
            st = 0
    letters = [c for c in name if c.isalpha()]
    if st == 0:
        s = " ".join(c.upper() for c in letters)
    elif st == 1:
        s = " ".join(letters)
    elif st == 2:
        s = ", ".join(c.upper() for c in letters)
    elif st == 3:
        s = "%s as in %s, %s" % (letters[0].upper(), PHON[letters[0].upper()],
                                 " ".join(c.upper() for c in letters[1:]))
    elif st == 4:
        s = sdouble_letters(name)
    else:
        out = []
        for c in name:
            out.append("apostrophe" if c == "'" else c.upper())
        s = sdouble_letters_tokens(out)
    return E("PERSON", s, "spoken"), {"plain": name}


def sdouble_letters_tokens(tokens):
    out = []
    i = 0
    while i < len(tokens):
        if i + 1 < len(tokens) and tokens[i] == tokens[i + 1] and len(tokens[i]) == 1:
            out.append("double " + tokens[i])
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return " ".join(out)


def sdouble_letters(name):
    return sdouble_letters_tokens([c.upper() for c in name if c.isalpha()])


DOMAINS = [("gmail.com", "gmail dot com"), ("outlook.com", "outlook dot com"),
           ("yahoo.co.uk", "yahoo dot co dot uk"), ("hotmail.com", "hotmail dot com"),
           ("icloud.com", "icloud dot com"), ("brightwater.org", "brightwater dot org"),
           ("harlowdesign.co.uk", "harlow design dot co dot uk"),
           ("greenfieldlaw.co.uk", "greenfield law dot co dot uk"),
           ("riversidefoodbank.org", "riverside food bank dot org")]
EMAIL_PEOPLE = [("priya", "patel"), ("tomasz", "kowalski"), ("ngozi", "okafor"), ("wei", "chen"),
                ("diego", "fernandes"), ("siobhan", "walsh"), ("anders", "lindqvist"),
                ("fatima", "haddad"), ("kwame", "mensah"), ("mei", "nakamura"), ("rahul", "iyer"),
                ("beatriz", "delgado"), ("declan", "brennan"), ("noura", "sokolov")]


def email_tokens(k):
    """returns list of tokens: ('w', word) | ('sep', '.', 'dot') | ('num', '84') | ('l', 'j')"""
    f, l = EMAIL_PEOPLE[k % len(EMAIL_PEOPLE)]
    num = str(R.randint(1, 99)) if R.random() < 0.7 else str(R.randint(1960, 2004))
    pat = k % 7
    if pat == 0:
        return [("w", f), ("sep", ".", "dot"), ("w", l), ("num", num)]
    if pat == 1:
        return [("l", f[0]), ("sep", "_", "underscore"), ("w", l)]
    if pat == 2:
        return [("w", f), ("w", l), ("num", num)]
    if pat == 3:
        return [("w", f), ("sep", ".", "dot"), ("l", l[0])]
    if pat == 4:
        return [("l", f[0]), ("w", l), ("num", num)]
    if pat == 5:
        return [("w", f), ("sep", "_", "underscore"), ("w", l)]
    return [("w", l), ("sep", "-", "dash"), ("w", f)]


def email_written(tokens, dom, cap=False):
    out = []
    for t in tokens:
        if t[0] == "sep":
            out.append(t[1])
        else:
            out.append(t[1].capitalize() if cap and t[0] in ("w", "l") else t[1])
    return "".join(out) + "@" + dom[0]


def say_num_token(num, style):
    if len(num) == 4 and num.startswith(("19", "20")) and style % 2 == 0:
        return yw(int(num))
    if style % 2 == 0 and len(num) == 2 and num[0] != "0":
        return n2w(int(num))
    return sd(num)


def email_spoken(tokens, dom, style):
    out = []
    for t in tokens:
        if t[0] == "sep":
            out.append(t[2])
        elif t[0] == "num":
            out.append(say_num_token(t[1], style))
        elif t[0] == "l":
            out.append(t[1])
        else:
            out.append(" ".join(t[1]) if style == 3 else t[1])
    return " ".join(out) + " at " + dom[1]


def v_email(form, **o):
    k = nxt(("EM", form))
    toks = email_tokens(k + (3 if form == "spoken" else 0))
    dom = DOMAINS[(k * 2 + (form == "spoken")) % len(DOMAINS)]
    if form == "written":
        return E("EMAIL_ADDRESS", email_written(toks, dom, cap=(k % 4 == 3)), form), {}
    return E("EMAIL_ADDRESS", email_spoken(toks, dom, k % 4), form), {}


IBAN_CTRY = {"GB": "uk", "IE": "irish", "DE": "german", "NL": "dutch", "FR": "french", "ES": "spanish"}
BANK_WORD = {"BARC": "barc", "RABO": "rabo", "BOFI": "bofi", "LOYD": "loyd"}


def v_iban(form, **o):
    k = nxt(("IBAN", form))
    if form == "written":
        cc = ["GB", "DE", "NL", "FR", "ES", "IE", "GB", "DE"][k % 8]
        iban = gen_iban(cc)
        g = chunks(iban, 4)
        st = k % 6
        s = [" ".join(g), ", ".join(g), " ".join(g).lower(),
             iban[:2] + " " + iban[2:4] + " " + " ".join(chunks(iban[4:], 4)),
             iban, iban.lower()][st]
        return E("IBAN_CODE", s, form), {"ctry": IBAN_CTRY[cc]}
    st = k % 5
    if st in (1, 4):
        cc, bank = [("GB", "BARC"), ("NL", "RABO"), ("IE", "BOFI"), ("GB", "LOYD")][(k // 2) % 4]
        iban = gen_iban(cc, bank)
    else:
        cc = ["DE", "GB", "ES", "FR", "NL", "IE", "GB"][k % 7]
        iban = gen_iban(cc)
    g = chunks(iban, 4)
    if st == 0:
        s = ", ".join(say_alnum(x) for x in g)
    elif st == 1:
        parts = [say_alnum(g[0], upper=False)] + [BANK_WORD[g[1]]] + [sd(x) for x in g[2:]]
        s = ", ".join(parts)
    elif st == 2:
        s = say_alnum(iban, upper=False)
    elif st == 3:
        s = say_alnum(iban[:2]) + ", " + sd(iban[2:4], "zero") + ", " + ", ".join(
            say_alnum(x, zero="zero") for x in chunks(iban[4:], 4))
    else:
        s = say_alnum(g[0]) + " " + " ".join(BANK_WORD[g[1]] if i == 0 else sd(x, "zero")
                                             for i, x in enumerate(g[1:]))
    return E("IBAN_CODE", s, form), {"ctry": IBAN_CTRY[cc]}


def v_acct(form, **o):
    k = nxt(("ACCT", form))
    n = [10, 8, 12, 9, 11, 10][k % 6]
    num = str(R.randint(1, 9)) + rdig(n - 1)
    if form == "written":
        s = [num, " ".join(chunks(num, 4)), num,
             "-".join(chunks(num, 4)) if len(num) % 4 == 0 else " ".join(chunks(num, 3))][k % 4]
    else:
        s = [", ".join(sd(x) for x in chunks(num, 4)), sd(num, "zero"),
             " ".join(sdouble(x) for x in chunks(num, 3)), ", ".join(sd(x) for x in chunks(num, 3))][k % 4]
    return E("US_BANK_NUMBER", s, form), {}


def v_aba(form, **o):
    k = nxt(("ABA", form))
    n = gen_aba()
    assert aba_ok(n)
    if form == "written":
        s = [n, " ".join(chunks(n, 3)), n][k % 3]
    else:
        s = [sgroups(chunks(n, 3)), sd(n, "zero"), " ".join(sdouble(x) for x in chunks(n, 3)),
             sd(n[:4]) + ", " + sd(n[4:])][k % 4]
    return E("ABA_ROUTING_NUMBER", s, form), {}


def v_cvv(form, **o):
    k = nxt(("CVV", form))
    n = rdig(3)
    if form == "written":
        s = [n, " ".join(n), n][k % 3]
    else:
        s = [sd(n), dword(n[0]) + " " + (pair(n[1:]) if n[1] != "0" else sd(n[1:])), sd(n, "zero")][k % 3]
    return E("CARD_CVV", s, form), {}


def v_exp(form, **o):
    k = nxt(("EXP", form))
    m = R.randint(1, 12)
    y = R.randint(2026, 2032)
    mm, yy = "%02d" % m, "%02d" % (y % 100)
    if form == "written":
        s = ["%s/%s" % (mm, yy), "%s/%d" % (mm, y), "%d/%s" % (m, yy), " ".join(mm + yy),
             "%s-%s" % (mm, yy)][k % 5]
    else:
        s = [pair(mm) + " " + n2w(int(yy)), sd(mm + yy, "zero"), MONTHS[m - 1] + " " + yw(y),
             MONTHS[m - 1] + " of " + n2w(int(yy)), pair(mm) + " slash " + n2w(int(yy)),
             MONTHS[m - 1] + ", uh, " + yw(y, 1)][k % 6]
    return E("CARD_EXPIRY", s, form), {}


def rand_dob():
    y = R.randint(1938, 2004)
    m = R.randint(1, 12)
    d = R.randint(1, calendar.monthrange(y, m)[1])
    return y, m, d


def v_dob(form, **o):
    k = nxt(("DOB", form))
    y, m, d = rand_dob()
    mon = MONTHS[m - 1]
    mm, dd, yy = "%02d" % m, "%02d" % d, "%02d" % (y % 100)
    pre = ""
    if form == "written":
        st = o.get("style", k % 7)
        s = ["%s/%s/%d" % (mm, dd, y), "%d-%s-%s" % (y, mm, dd), "%d/%d/%s" % (m, d, yy),
             "%s/%s/%d" % (dd, mm, y), "%s %d, %d" % (mon, d, y), "%s-%s-%d" % (mm, dd, y),
             "%d %s %d" % (d, mon.capitalize(), y)][st]
    else:
        st = o.get("style", k % 8)
        if st == 0:
            s = "%s %s %s" % (mon, ordw(d), yw(y))
        elif st == 1:
            if d < 21 or d == 30:
                d = R.choice([21, 22, 23, 24, 25, 26, 27, 28])
            s = "%s of %s %s" % (ordw(d, hyphen=True), mon, yw(y))
            pre = "the "
        elif st == 2:
            s = "%s %s, %s, %s" % (mon, ordw(d), R.choice(["uh", "um", "hold on"]), yw(y))
        elif st == 3:
            s = "%s, %s %s" % (yw(y), mon, ordw(d))
        elif st == 4:
            s = "%s %s %s" % (n2w(d), pair(mm), pair(yy))
        elif st == 5:
            s = "%s %s, %s" % (mon, n2w(d), yw(y))
        elif st == 6:
            s = "%s of %s, %s" % (ordw(d), mon, pair(yy))
        else:
            s = "%s %s %s" % (n2w(m), n2w(d), pair(yy))
    return E("DATE_OF_BIRTH", s, form, pre=pre), {}


LETTERS_NO_IO = "ABCDEFGHJKLMNPRSTUVWXYZ"


def v_member(form, **o):
    k = nxt(("MEM", form))
    f = (k + (form == "spoken") * 2) % 5
    if f == 0:
        lets, digs = "".join(R.choice(LETTERS_NO_IO) for _ in range(3)), rdig(9)
    elif f == 1:
        lets, digs = "W", rdig(9)
    elif f == 2:
        lets, digs = "".join(R.choice(LETTERS_NO_IO) for _ in range(2)), rdig(8)
    elif f == 3:
        lets, digs = "", str(R.randint(1, 9)) + rdig(10)
    else:
        lets, digs = R.choice(LETTERS_NO_IO), rdig(2) + R.choice(LETTERS_NO_IO) + rdig(6)
    raw = lets + digs
    if form == "written":
        st = k % 4
        if st == 0:
            s = raw
        elif st == 1:
            s = raw.lower()
        elif st == 2:
            s = (lets + " " if lets else "") + " ".join(chunks(digs, 3))
        else:
            s = (lets + "-" if lets else "") + "-".join(chunks(digs, 4))
        return E("MEMBER_ID", s, form), {}
    st = k % 4
    if st == 0:
        s = ((say_alnum(lets) + ", ") if lets else "") + ", ".join(say_alnum(x) for x in chunks(digs, 3))
    elif st == 1:
        s = say_alnum(raw, upper=False)
    elif st == 2 and lets:
        s = "%s as in %s, %s" % (lets[0], PHON[lets[0]], say_alnum(raw[1:], zero="zero"))
    else:
        s = say_alnum(raw, zero="zero")
    return E("MEMBER_ID", s, form), {}


def v_pin(form, **o):
    k = nxt(("PIN", form))
    n = [4, 6, 4, 8, 5, 4, 6][k % 7]
    p = rdig(n)
    if form == "written":
        s = [p, " ".join(p), p][k % 3]
    else:
        s = [sd(p), spairs(p) if n % 2 == 0 else sd(p, "zero"), sdouble(p), sd(p, "zero")][k % 4]
    return E("PIN", s, form), {"n": n2w(n)}


DL_STATES = ["california", "new york", "florida", "texas"]


def v_dl(form, **o):
    k = nxt(("DL", form))
    stt = o.get("state") or DL_STATES[(k + (form == "spoken")) % 4]
    j = k // 4
    if stt == "california":
        L = R.choice(LETTERS_NO_IO)
        d = rdig(7)
        if form == "written":
            s = [L + d, (L + d).lower()][j % 2]
        else:
            s = ["%s as in %s, %s, %s" % (L, PHON[L], sd(d[:3]), sd(d[3:])), L + " " + sd(d, "zero")][j % 2]
    elif stt == "new york":
        d = str(R.randint(1, 9)) + rdig(8)
        if form == "written":
            s = [d, " ".join(chunks(d, 3))][j % 2]
        else:
            s = [sgroups(chunks(d, 3)), " ".join(sdouble(x) for x in chunks(d, 3))][j % 2]
    elif stt == "florida":
        L = R.choice(LETTERS_NO_IO)
        d = rdig(12)
        if form == "written":
            s = ["%s%s-%s-%s-%s-%s" % (L, d[:3], d[3:6], d[6:8], d[8:11], d[11]), L + d][j % 2]
        else:
            s = ["%s %s, %s, %s, %s, %s" % (L, sd(d[:3]), sd(d[3:6]), sd(d[6:8]), sd(d[8:11]), sd(d[11])),
                 "%s as in %s %s" % (L, PHON[L], sd(d, "zero"))][j % 2]
    else:  # texas
        d = str(R.randint(1, 4)) + rdig(7)
        if form == "written":
            s = [d, d[:4] + " " + d[4:]][j % 2]
        else:
            s = [sd(d[:4]) + ", " + sd(d[4:]), spairs(d)][j % 2]
    return E("US_DRIVER_LICENSE", s, form), {"st": stt}


def v_passport(form, **o):
    k = nxt(("PP", form))
    if (k + (form == "spoken")) % 2 == 0:
        d = str(R.randint(1, 9)) + rdig(8)
        if form == "written":
            s = d
        else:
            s = [sgroups(chunks(d, 3)), sd(d, "zero")][(k // 2) % 2]
    else:
        L = R.choice("ACEFGHJKMNPRW")
        d = rdig(8)
        if form == "written":
            s = [L + d, L + " " + d][(k // 2) % 2]
        else:
            s = ["%s as in %s, %s, %s" % (L, PHON[L], sd(d[:4]), sd(d[4:])), L + " " + sd(d)][(k // 2) % 2]
    return E("US_PASSPORT", s, form), {}


def v_mbi(form, **o):
    k = nxt(("MBI", form))
    m = gen_mbi()
    g = [m[:4], m[4:7], m[7:]]
    if form == "written":
        s = ["-".join(g), m, "-".join(g).lower(), " ".join(g)][k % 4]
    else:
        s = [", ".join(say_alnum(x) for x in g), say_alnum(m), ", ".join(say_alnum(x, upper=False) for x in g),
             " ".join(say_alnum(x, zero="zero") for x in g)][k % 4]
    return E("MEDICARE_MBI", s, form), {}


def v_nhs(form, **o):
    k = nxt(("NHS", form))
    n = gen_nhs()
    assert nhs_ok(n)
    g = [n[:3], n[3:6], n[6:]]
    if form == "written":
        s = [" ".join(g), n, "-".join(g), " ".join(g)][k % 4]
    else:
        s = [sgroups(g), sd(n), ", ".join(sdouble(x) for x in g), sgroups(g, "zero", " ")][k % 4]
    return E("NHS_NUMBER", s, form), {}


def v_nino(form, **o):
    k = nxt(("NINO", form))
    n = gen_nino()
    p, d, suf = n[:2], n[2:8], n[8]
    if form == "written":
        s = ["%s %s %s" % (p, " ".join(chunks(d, 2)), suf), n, ("%s %s %s" % (p, " ".join(chunks(d, 2)), suf)).lower(),
             "%s %s %s" % (p, d, suf)][k % 4]
    else:
        st = k % 4
        if st == 0:
            s = "%s %s, %s" % (" ".join(p), ", ".join(sd(x) for x in chunks(d, 2)), suf)
        elif st == 1:
            s = "%s %s %s" % (" ".join(p), sd(d), suf)
        elif st == 2:
            s = "%s, %s, %s" % (" ".join(p.lower()), ", ".join(pair(x) for x in chunks(d, 2)), suf.lower())
        else:
            s = "%s for %s, %s for %s, %s, %s for %s" % (p[0], PHON[p[0]], p[1], PHON[p[1]], sd(d), suf, PHON[suf])
    return E("UK_NINO", s, form), {}


# addresses ------------------------------------------------------------------
US_STREETS = [("maple", "avenue", "ave"), ("elm", "street", "st"), ("cedar", "lane", "ln"),
              ("oak", "drive", "dr"), ("lincoln", "boulevard", "blvd"), ("willow", "court", "ct"),
              ("hawthorne", "road", "rd"), ("birch", "way", "way"), ("sycamore", "street", "st")]
NUM_STREETS = [("5th", "fifth"), ("3rd", "third"), ("42nd", "forty second"), ("21st", "twenty first")]
DIRS = [("north", "n"), ("south", "s"), ("east", "e"), ("west", "w")]
US_CITIES = [("springfield", "illinois", "IL", "627"), ("austin", "texas", "TX", "787"),
             ("denver", "colorado", "CO", "802"), ("columbus", "ohio", "OH", "432"),
             ("tampa", "florida", "FL", "336"), ("portland", "oregon", "OR", "972"),
             ("madison", "wisconsin", "WI", "537"), ("raleigh", "north carolina", "NC", "276")]
UK_OUT = [("SW3", "london"), ("M1", "manchester"), ("LS6", "leeds"), ("B15", "birmingham"),
          ("EH1", "edinburgh"), ("CF10", "cardiff"), ("BS8", "bristol"), ("NW1", "london"),
          ("E14", "london"), ("G12", "glasgow"), ("EC1V", "london"), ("SE22", "london"),
          ("OX4", "oxford"), ("CB2", "cambridge"), ("L8", "liverpool"), ("NE6", "newcastle"),
          ("BT9", "belfast"), ("SW1A", "london"), ("W1D", "london")]
UK_STREETS = [("kings", "road"), ("church", "lane"), ("victoria", "street"), ("mill", "close"),
              ("station", "road"), ("park", "avenue"), ("queens", "crescent"), ("holly", "gardens"),
              ("albert", "terrace"), ("high", "street")]
INWARD_L = "ABDEFGHJLNPQRSTUWXYZ"


def hn(num):
    """house number spoken the usual way"""
    s = str(num)
    if len(s) == 4:
        return pair(s[:2]) + " " + pair(s[2:])
    if len(s) == 3:
        return DW[int(s[0])] + " " + pair(s[1:])
    return n2w(num)


def gen_postcode(i=None):
    out, town = UK_OUT[i % len(UK_OUT)] if i is not None else R.choice(UK_OUT)
    inward = str(R.randint(1, 9)) + R.choice(INWARD_L) + R.choice(INWARD_L)
    return out + " " + inward, town


def say_outward(out, numeric=False):
    m = re.match(r"^([A-Z]+)(\d+)([A-Z]?)$", out)
    letters, digs, tail = m.groups()
    parts = [" ".join(letters)]
    parts.append(n2w(int(digs)) if numeric else sd(digs))
    if tail:
        parts.append(tail)
    return " ".join(parts)


def say_pc(pc, gsep=", ", numeric=False, upper=True):
    out, inw = pc.split()
    s = say_outward(out, numeric) + gsep + say_alnum(inw)
    return s if upper else s.lower()


def v_addr(form, **o):
    k = nxt(("ADDR", form))
    region = o.get("region") or ["us", "uk", "us", "uk", "us", "uk"][k % 6]
    j = nxt(("ADDR", form, region))
    if region == "us":
        city, state, st_abbr, zp = US_CITIES[(j * 3 + (form == "spoken")) % len(US_CITIES)]
        zp = zp + rdig(2)
        street, typ, ab = US_STREETS[(j * 2 + (form == "spoken")) % len(US_STREETS)]
        dr, dra = DIRS[j % 4]
        num = R.choice([R.randint(10, 99), R.randint(100, 999), R.randint(1000, 9999)])
        unit = R.choice(["4B", "3", "12", "2C", "7"])
        nst, nsp = NUM_STREETS[j % 4]
        if form == "written":
            st = j % 5
            if st == 0:
                s = "%d %s %s %s apartment %s, %s, %s %s" % (num, dr, street, typ, unit.lower(), city, state, zp)
            elif st == 1:
                s = "%d %s %s, Apt %s, %s, %s %s" % (num, street.capitalize(), ab.capitalize(), unit,
                                                    title(city), st_abbr, zp)
            elif st == 2:
                s = "%d %s %s street" % (num, dra, nst)
            elif st == 3:
                s = "%d %s %s, %s, %s" % (num, street, typ, city, state)
            else:
                s = "%d %s %s, %s %s %s" % (num, street, ab, city, st_abbr, zp)
        else:
            st = j % 5
            if st == 0:
                s = "%s %s %s %s" % (hn(num), dr, street, typ)
            elif st == 1:
                s = "%s %s %s, %s %s, %s" % (hn(num), street, typ, city, state, sd(zp))
            elif st == 2:
                s = "%s %s %s street, apartment %s" % (sd(str(num)), dr, nsp, say_alnum(unit, upper=False))
            elif st == 3:
                s = "%s %s %s, %s, %s" % (hn(num), street, typ, city, state)
            else:
                s = "%s %s %s unit %s, %s %s %s" % (hn(num), street, typ, say_alnum(unit, upper=False),
                                                    city, state, sd(zp, "zero"))
        return E("ADDRESS", s, form), {}
    pc, town = gen_postcode(j * 5 + 3 * (form == "spoken"))
    street, typ = UK_STREETS[(j * 3 + (form == "spoken")) % len(UK_STREETS)]
    num = R.randint(1, 99)
    if form == "written":
        st = j % 4
        if st == 0:
            s = "%d %s %s, %s, %s" % (num, street, typ, town, pc)
        elif st == 1:
            s = "%d %s %s, %s %s" % (num, street.capitalize(), typ.capitalize(), town.capitalize(), pc)
        elif st == 2:
            s = "%d %s %s, %s" % (num, street, typ, town)
        else:
            s = "%d%s %s %s, %s, %s" % (num, R.choice("ab"), street, typ, town, pc.lower())
    else:
        st = j % 4
        if st == 0:
            s = "%s %s %s, %s, %s" % (n2w(num), street, typ, town, say_pc(pc))
        elif st == 1:
            s = "%s %s %s, %s" % (n2w(num), street, typ, say_pc(pc, " ", numeric=True))
        elif st == 2:
            s = "%s %s %s, %s" % (n2w(num), street, typ, town)
        else:
            s = "%s %s %s %s %s" % (n2w(num), street, typ, town, say_pc(pc, " ", upper=False))
    return E("ADDRESS", s, form), {}


def v_postcode(form, **o):
    k = nxt(("PC", form))
    pc, _ = gen_postcode(k * 7 + 2 + (form == "spoken"))
    if form == "written":
        s = [pc, pc.lower(), pc.replace(" ", ""), pc][k % 4]
    else:
        s = [say_pc(pc), say_pc(pc, " ", numeric=True), say_pc(pc, ", ", upper=False), say_pc(pc, " ")][k % 4]
    return E("ADDRESS", s, form), {}


GEN = {"CREDIT_CARD": v_card, "US_SSN": v_ssn, "PHONE_NUMBER": v_phone, "EMAIL_ADDRESS": v_email,
       "IBAN_CODE": v_iban, "US_BANK_NUMBER": v_acct, "ABA_ROUTING_NUMBER": v_aba,
       "CARD_CVV": v_cvv, "CARD_EXPIRY": v_exp, "DATE_OF_BIRTH": v_dob, "MEMBER_ID": v_member,
       "PIN": v_pin, "US_DRIVER_LICENSE": v_dl, "US_PASSPORT": v_passport,
       "MEDICARE_MBI": v_mbi, "NHS_NUMBER": v_nhs, "UK_NINO": v_nino, "ADDRESS": v_addr,
       "POSTCODE": v_postcode, "PERSON": v_name}

# ---------------------------------------------------------------------------
# carrier sentences per type (single-entity utterances)
# ---------------------------------------------------------------------------
T = {
    "CREDIT_CARD": [
        "yeah the card number is {v}",
        "um, okay, it's {iss}, {v}",
        "card number, {v}, and that's {iss}",
        "i wanna pay with my {issb}, the number's {v}",
        "sure, hang on, let me grab it. okay, {v}",
        "the long number on the front is {v}",
        "so it's, uh, no wait that's the old one, okay the new card is {v}",
        "{v}, that's the card i want to use",
    ],
    "US_SSN": [
        "my social is {v}",
        "social security number {v}",
        "ssn is {v}",
        "okay, the full social? um, {v}",
        "it's {v}, that's my social",
        "s s n, {v}",
        "my social security number's {v}, do you need anything else",
    ],
    "PHONE_NUMBER": [
        "my number is {v}",
        "can you call me back on {v}",
        "the best number to reach me is {v}",
        "you can text me at {v}",
        "uh, my cell, it's {v}",
        "the phone number on the account should be {v}",
        "{v}, that's the number on file",
        "yeah so it's {v}, that's the home number",
    ],
    "EMAIL_ADDRESS": [
        "my email is {v}",
        "you can email me at {v}",
        "send it to {v} please",
        "it's {v}, all lower case",
        "e-mail address, um, {v}",
        "the email on file should be {v}",
        "{v}, that's my email",
    ],
    "IBAN_CODE": [
        "my iban is {v}",
        "the IBAN for my {ctry} account is {v}",
        "okay, can you send it to {v}, that's my {ctry} account",
        "the I B A N, um, {v}",
        "international bank account number, {v}",
        "it's {v}, the iban",
        "transfer it to iban {v} please",
    ],
    "US_BANK_NUMBER": [
        "account number {v}",
        "my checking account number is {v}",
        "it's the savings account, {v}",
        "uh, the account is {v}",
        "acct number, um, {v}",
        "can you deposit it into checking {v}",
        "the account number on my statement is {v}",
    ],
    "ABA_ROUTING_NUMBER": [
        "the routing number is {v}",
        "ABA number {v}",
        "routing, {v}",
        "and the routing's {v}",
        "A B A routing number, {v}",
        "{v}, that's the routing number",
        "okay the bank routing number, uh, {v}",
    ],
    "CARD_CVV": [
        "cvv is {v}",
        "the C V V, um, {v}",
        "C V C {v}",
        "security code on the back is {v}",
        "{v}, that's the cvv",
        "the three digit code, uh, {v}",
        "and the code on the back is {v}",
    ],
    "CARD_EXPIRY": [
        "expiry {v}",
        "it expires {v}",
        "expiration date is {v}",
        "exp date, um, {v}",
        "it's good through {v}",
        "valid thru {v}",
        "{v}, that's the expiration",
    ],
    "DATE_OF_BIRTH": [
        "date of birth is {v}",
        "my d o b is {v}",
        "i was born {v}",
        "{v} is my date of birth",
        "um, birthday, {v}",
        "it's {v}, that's my date of birth",
        "the patient's date of birth is {v}",
        "DOB {v}",
    ],
    "MEMBER_ID": [
        "my member id is {v}",
        "member number, {v}",
        "the policy number is {v}",
        "subscriber id {v}",
        "um, the id number on my insurance card is, uh, {v}",
        "it's {v}, that's the member id",
        "policy no. {v}",
    ],
    "PIN": [
        "my pin is {v}",
        "the pin, um, {v}",
        "telephone banking passcode is {v}",
        "passcode {v}",
        "it's {v}, that's my pin",
        "security pin, {v}",
        "and my {n} digit passcode's {v}",
    ],
    "US_DRIVER_LICENSE": [
        "driver's license number is {v}",
        "license number {v}",
        "DL number {v}",
        "my {st} license, uh, {v}",
        "drivers license, um, {v}",
        "it's a {st} driver's license, number {v}",
    ],
    "US_PASSPORT": [
        "passport number {v}",
        "my passport number is {v}",
        "the passport no. is {v}",
        "u s passport, number {v}",
        "{v}, that's the passport number",
        "um, passport, it's {v}",
    ],
    "MEDICARE_MBI": [
        "my medicare number is {v}",
        "MBI {v}",
        "medicare ID, {v}",
        "the new medicare card number is {v}",
        "medicare beneficiary identifier, um, {v}",
        "it's {v} on the red white and blue card",
        "okay, {v}, that's what's on my card",
    ],
    "NHS_NUMBER": [
        "my NHS number is {v}",
        "nhs number, {v}",
        "N H S number {v}",
        "it's {v}, that's the NHS number",
        "the patient's nhs number is {v}",
        "um, my N H S number's, uh, {v}",
    ],
    "UK_NINO": [
        "national insurance number is {v}",
        "my NI number, {v}",
        "N I number {v}",
        "NINO {v}",
        "my national insurance, um, it's {v}",
        "{v}, that's my national insurance number",
    ],
    "ADDRESS": [
        "i live at {v}",
        "my address is {v}",
        "the service address is {v}",
        "we just moved to {v}",
        "can you send it to {v}",
        "the property's at {v}",
        "uh, it's {v}, that's the billing address",
    ],
    "POSTCODE": [
        "my postcode is {v}",
        "post code {v}",
        "the postcode's {v}",
        "postcode, um, {v}",
        "and the post code is {v}, i think",
    ],
    "PERSON_W": [
        "my name is {v}",
        "this is {v} speaking",
        "{v} speaking",
        "the account holder is {v}",
        "it's under {v}",
        "hi, yeah, my name's {v}, i'm calling about my bill",
        "name on the card is {v}",
        "i'm calling for my mother, her name is {v}",
    ],
    "PERSON_S": [
        "last name is {v}",
        "that's {v}",
        "surname, {v}",
        "it's spelled {v}",
        "my last name, um, {v}",
        "family name is {v}",
    ],
}

GROUP = {"CREDIT_CARD": "card", "CARD_CVV": "card", "CARD_EXPIRY": "card", "IBAN_CODE": "bank",
         "US_BANK_NUMBER": "bank", "ABA_ROUTING_NUMBER": "bank", "PIN": "bank", "MEMBER_ID": "ins",
         "MEDICARE_MBI": "ins", "DATE_OF_BIRTH": "clinic", "NHS_NUMBER": "uk", "UK_NINO": "uk",
         "US_SSN": "id", "US_DRIVER_LICENSE": "id", "US_PASSPORT": "id", "ADDRESS": "addr",
         "POSTCODE": "addr", "PERSON": "name", "PHONE_NUMBER": "util", "EMAIL_ADDRESS": "util"}
ALT_GROUP = {"NHS_NUMBER": "clinic", "DATE_OF_BIRTH": "ins", "PHONE_NUMBER": "bank",
             "EMAIL_ADDRESS": "ins", "MEDICARE_MBI": "clinic", "PIN": "card", "ADDRESS": "util"}

# (written, spoken) single-entity utterances per type; the multi-entity and
# partial-redaction utterances below top every type up to >= 6 per form.
N_SINGLE = {t: (4, 4) for t in GEN}
N_SINGLE.update({"ABA_ROUTING_NUMBER": (6, 4), "CREDIT_CARD": (2, 5), "IBAN_CODE": (3, 6),
                 "MEDICARE_MBI": (5, 5), "MEMBER_ID": (5, 4), "NHS_NUMBER": (5, 4), "PIN": (5, 5),
                 "UK_NINO": (5, 4), "US_DRIVER_LICENSE": (5, 5), "US_PASSPORT": (5, 5),
                 "US_SSN": (5, 4), "DATE_OF_BIRTH": (3, 3), "PERSON": (2, 5), "POSTCODE": (2, 2),
                 "EMAIL_ADDRESS": (4, 3)})


def singles():
    for typ in GEN:
        for form in ("written", "spoken"):
            for k in range(N_SINGLE[typ][form == "spoken"]):
                ent, extra = GEN[typ](form)
                key = typ if typ != "PERSON" else ("PERSON_W" if form == "written" else "PERSON_S")
                tl = T[key]
                tmpl = tl[(2 * k + (form == "spoken")) % len(tl)]
                parts = fill(tmpl, v=ent, **extra)
                if (k + len(RECS)) % 3 == 0:
                    parts = sentence_case(parts)
                grp = GROUP[typ]
                if k % 2 == 1 and typ in ALT_GROUP:
                    grp = ALT_GROUP[typ]
                if typ == "PHONE_NUMBER" and ent["s"].startswith(("0", "+44", "oh", "plus four four")):
                    grp = "uk"
                add(grp, parts)


# ---------------------------------------------------------------------------
# multi-entity utterances
# ---------------------------------------------------------------------------
SLOT_TYPE = {"cc": "CREDIT_CARD", "exp": "CARD_EXPIRY", "cvv": "CARD_CVV", "dob": "DATE_OF_BIRTH",
             "name": "PERSON", "spell": "PERSON", "mem": "MEMBER_ID", "usaddr": "ADDRESS",
             "ukaddr": "ADDRESS", "pc": "POSTCODE", "phone": "PHONE_NUMBER", "ukphone": "PHONE_NUMBER",
             "email": "EMAIL_ADDRESS", "mbi": "MEDICARE_MBI", "nhs": "NHS_NUMBER", "nino": "UK_NINO",
             "iban": "IBAN_CODE", "aba": "ABA_ROUTING_NUMBER", "acct": "US_BANK_NUMBER", "pin": "PIN",
             "ssn": "US_SSN", "dl": "US_DRIVER_LICENSE", "pp": "US_PASSPORT"}

COMBOS = [
    ("card", "w", "okay so the card number is {cc}, expiry {exp}, and the, uh, the cvv is {cvv}"),
    ("card", "s", "um, yeah, it's {iss}, {cc}, expires {exp}, and the code on the back is {cvv}"),
    ("card", "s", "expiration {exp} and, uh, C V V {cvv}"),
    ("card", "w", "card's {cc} exp {exp}"),
    ("card", "w", "the security code is {cvv} and it expires {exp}"),
    ("card", "s", "{cvv}, that's the cvv, and the expiry is {exp}"),
    ("clinic", "w", "hi, my name is {name}, date of birth {dob}, i'm calling about my results"),
    ("clinic", "s", "yeah this is {name} speaking, um, d o b is {dob}"),
    ("ins", "w", "member id {mem}, and the date of birth on the policy is {dob}"),
    ("ins", "s", "the policy holder is {name}, member number {mem}"),
    ("util", "w", "service address is {usaddr}, and the best number is {phone}"),
    ("util", "s", "my email's {email} or you can call {phone}"),
    ("util", "w", "the account holder is {name}, email on file {email}"),
    ("ins", "s", "medicare number {mbi}, and my birthday is {dob}"),
    ("clinic", "w", "NHS number {nhs}, date of birth {dob}"),
    ("uk", "s", "my name is {name} and my national insurance number is {nino}"),
    ("uk", "w", "postcode {pc}, and the mobile's {ukphone}"),
    ("bank", "w", "it's going to {name}, iban {iban}"),
    ("bank", "s", "routing number {aba}, and the account number is {acct}"),
    ("bank", "w", "checking account {acct}, pin {pin}"),
    ("id", "w", "social is {ssn}, born {dob}"),
    ("id", "s", "my {st} driver's license number is {dl} and the address on it is {usaddr}"),
    ("id", "w", "passport number {pp}, and the name exactly as it appears is {name}"),
    ("name", "s", "my name's {name}, last name is {spell}"),
    ("id", "s", "my social's {ssn}, and it's under {name}"),
    ("bank", "s", "the ABA is {aba}, account {acct}, and the account holder is {name}"),
    ("uk", "s", "NHS number's {nhs}, and i live at {ukaddr}"),
    ("id", "w", "DL number {dl}, date of birth {dob}"),
    ("ins", "w", "MBI {mbi}, and the account's under {name}"),
    ("uk", "w", "NI number {nino}, postcode {pc}"),
    ("bank", "s", "telephone banking passcode is {pin}, and my date of birth's {dob}"),
    ("addr", "s", "i'm at {usaddr}, email is {email}"),
    ("ins", "s", "subscriber id {mem}, callback number {phone}"),
    ("id", "s", "passport number {pp}, date of birth {dob}"),
    ("bank", "w", "send it to iban {iban}, the account's in the name of {name}"),
    ("uk", "s", "um, my postcode, {pc}, and my NI number is {nino}"),
    ("clinic", "s", "is that {name}? yes, and date of birth, uh, {dob}"),
    ("card", "w", "name on the card is {name}, number {cc}"),
]


def combos():
    for grp, f, tmpl in COMBOS:
        form = "written" if f == "w" else "spoken"
        kw = {}
        extras = {}
        for slot in SLOT.findall(tmpl):
            if slot not in SLOT_TYPE:
                continue
            typ = SLOT_TYPE[slot]
            opts = {}
            if slot == "usaddr":
                opts["region"] = "us"
            if slot == "ukaddr":
                opts["region"] = "uk"
            if slot == "ukphone":
                opts["kind"] = "uk_mob"
            if slot == "phone":
                opts["kind"] = "us"
            if slot == "dob" and grp in ("uk", "clinic") and form == "written" and "nhs" in tmpl:
                opts["style"] = 3
            eform = form
            if slot == "name":
                eform = "written"
            if slot == "spell":
                eform = "spoken"
                opts["last"] = kw["name"]["_last"]
            ent, ex = GEN[typ](eform, **opts)
            if slot == "name":
                ent["_last"] = ex["last"]
            kw[slot] = ent
            extras.update(ex)
        for kk, vv in extras.items():
            kw.setdefault(kk, vv)
        parts = fill(tmpl, **kw)
        for p in parts:
            if isinstance(p, dict):
                p.pop("_last", None)
        if len(RECS) % 4 == 0:
            parts = sentence_case(parts)
        add(grp, parts)


# ---------------------------------------------------------------------------
# partial-redaction cases: split e-mail local parts and false starts.
# One entity spans from the abandoned value to the end of the corrected one.
# ---------------------------------------------------------------------------
def specials():
    # member id false start (spoken)
    lets = "".join(R.choice(LETTERS_NO_IO) for _ in range(3))
    lets2 = lets[:2] + R.choice([c for c in LETTERS_NO_IO if c != lets[2]])
    digs = rdig(6)
    span = say_alnum(lets + digs[:2]) + ", sorry, " + say_alnum(lets2 + digs)
    add("ins", ["my member id is ", E("MEMBER_ID", span, "spoken")])

    # card false start (written)
    num = gen_card("visa")
    assert card_ok(num, "visa")
    g = chunks(num, 4)
    span = "%s %s, no wait, sorry, %s" % (g[0], g[1][:2], " ".join(g))
    add("card", ["the card is ", E("CREDIT_CARD", span, "written"), ", got it?"])

    # phone false start (spoken)
    a, ex, ln = gen_us_phone()
    span = "%s, %s, no, %s, %s, %s" % (sd(a), dword(R.choice("23456789")), sd(a), sd(ex), sd(ln))
    add("util", ["it's, um, ", E("PHONE_NUMBER", span, "spoken")])

    # ssn false start (spoken)
    n = gen_ssn()
    assert ssn_ok(n)
    span = "%s, %s, uh, no, %s, %s, %s" % (sd(n[:3]), dword(R.choice("123456789")), sd(n[:3]), sd(n[3:5]), sd(n[5:]))
    add("id", ["social is ", E("US_SSN", span, "spoken"), ", sorry about that"])

    # split local part e-mails (spoken)
    add("util", ["my email is ", E("EMAIL_ADDRESS", "siobhan walsh at gmail dot com", "spoken"),
                 ", all one word"])
    add("ins", ["it's, um, ", E("EMAIL_ADDRESS", "k mensah eighty four at outlook dot com", "spoken")])
    # split local part (written): recognizer put a space into janedoe-style address
    add("util", ["send the bill to ", E("EMAIL_ADDRESS", "tomasz kowalski@gmail.com", "written"), " please"])
    add("bank", ["email is ", E("EMAIL_ADDRESS", "r iyer 1987@yahoo.co.uk", "written")])

    # date of birth correction (spoken)
    y, m, d = rand_dob()
    m2 = (m % 12) + 1
    d = min(d, 28)
    span = "%s, no, %s %s %s" % (MONTHS[m - 1], MONTHS[m2 - 1], ordw(d), yw(y))
    add("clinic", ["she was born ", E("DATE_OF_BIRTH", span, "spoken")])

    # bank account false start (written)
    acct = str(R.randint(1, 9)) + rdig(11)
    wrong = acct[:4] + " " + acct[4:6] + acct[7] + acct[6]
    span = "%s, sorry, %s" % (wrong, " ".join(chunks(acct, 4)))
    add("bank", ["account number ", E("US_BANK_NUMBER", span, "written")])

    # NHS false start (spoken)
    n = gen_nhs()
    assert nhs_ok(n)
    span = "%s, %s, sorry, %s, %s, %s" % (sd(n[:3]), sd(n[3:5]), sd(n[:3]), sd(n[3:6]), sd(n[6:]))
    add("clinic", ["nhs number ", E("NHS_NUMBER", span, "spoken")])

    # IBAN correction (written)
    iban = gen_iban("DE")
    g = chunks(iban, 4)
    span = "%s %s, no, %s" % (g[0], g[1][:3], " ".join(g))
    add("bank", ["the iban is ", E("IBAN_CODE", span, "written")])


# ---------------------------------------------------------------------------
# negatives: no personal data, but look like it
# ---------------------------------------------------------------------------
def negatives():
    amt = "%d.%02d" % (R.randint(100, 2500), R.randint(0, 99))
    order = "%03d-%07d-%04d" % (R.randint(100, 999), R.randint(0, 9999999), R.randint(0, 9999))
    neg = [
        # card
        ("card", "w", "i was charged $%s twice on the 14th" % amt),
        ("card", "s", "the charge was for four hundred and twelve dollars and sixty cents"),
        ("card", "w", "the cvv field keeps saying invalid, i've tried three times"),
        ("card", "s", "um, the expiry date on the new card, where is that printed?"),
        ("card", "w", "my card expired last month and the new one hasn't come"),
        ("card", "s", "the A T M ate my card, like, twenty minutes ago"),
        ("card", "s", "i have, like, three cards with you guys, which one do you mean"),
        ("card", "w", "the pin reset takes 48 hours, is that right?"),
        ("card", "s", "i forgot my pin, can you send a new one"),
        ("card", "w", "the transaction reference is TXN-88241-QZ"),
        ("card", "w", "the bill's due 04/27, can i pay it then"),
        ("card", "s", "so the payment's due on the twenty-first of june"),
        ("card", "s", "what's the, like, the last four? i don't have the card on me"),
        ("card", "s", "the security code they texted me already expired"),
        ("card", "w", "the dispute case number is 2024-118834"),
        ("card", "s", "it was at the target on fifth avenue, like, two weeks ago"),
        ("card", "s", "press one for lost or stolen cards, press two for everything else"),
        ("card", "w", "the order number is %s" % order),
        # bank
        ("bank", "w", "i need the routing number for wire transfers, where do i find it"),
        ("bank", "s", "my account number, hold on, let me find it, it's somewhere in here"),
        ("bank", "w", "the BIC is NWBKGB2L, right?"),
        ("bank", "w", "is the IBAN the same as the account number?"),
        ("bank", "s", "it says error code E four oh two when i log in"),
        ("bank", "w", "is this wells fargo or did i get transferred"),
        ("bank", "w", "my name is on the account but my husband set it up"),
        ("bank", "s", "the account holder passed away in march, i'm the executor"),
        ("bank", "w", "the telephone banking passcode, is that the same as my pin?"),
        ("bank", "w", "i have my 401k with charles schwab, not you"),
        ("bank", "w", "the cheque number is 000412"),
        ("bank", "w", "the ATM at 5th and main is out of order"),
        ("bank", "s", "you know, the branch on oak street, by the post office"),
        ("bank", "s", "the confirmation is four seven seven, two one nine, eight eight"),
        ("bank", "w", "it's W E L L S, wells fargo, the one downtown"),
        ("bank", "s", "my bank's H S B C, the one on the high street"),
        # ins
        ("ins", "w", "the claim number is CLM-2023-004471"),
        ("ins", "s", "my claim number is four four seven one two nine"),
        ("ins", "w", "the deductible is $1,500 and i've met about half"),
        ("ins", "w", "i'm 72, my husband's 75"),
        ("ins", "w", "i've been a member since 2009"),
        ("ins", "w", "is this john hancock? i'm looking for life insurance"),
        ("ins", "s", "the policy renews on the first of september"),
        ("ins", "w", "the medicare part B premium is 174.70 a month"),
        ("ins", "s", "my medicare number? hang on, it's in my other purse"),
        ("ins", "w", "the group number is on the front, it's just the employer name"),
        ("ins", "w", "the confirmation number is 7YH4QX"),
        ("ins", "s", "i need a form, the W two form, for my taxes"),
        ("ins", "s", "who am i speaking with?"),
        ("ins", "s", "the A B C plan, the basic one, not the premium"),
        ("ins", "w", "my policy number is on the letter but i can't find the letter"),
        ("ins", "w", "ticket #448812 was closed without anyone calling me"),
        # clinic
        ("clinic", "w", "my appointment is at 10:30 on march 14th"),
        ("clinic", "s", "the appointment's on march fourteenth at two thirty"),
        ("clinic", "w", "the dr. appointment moved to 11/02"),
        ("clinic", "s", "the clinic opens at eight thirty, right?"),
        ("clinic", "w", "i was born in ohio but moved here in 1998"),
        ("clinic", "s", "my date of birth is on file, you should have it"),
        ("clinic", "w", "the date of birth field on the form is blank"),
        ("clinic", "w", "the lot number on the vial is EK5730"),
        ("clinic", "s", "my blood pressure was like one forty over ninety"),
        ("clinic", "w", "room 4B on the second floor"),
        ("clinic", "s", "the N H S app won't let me log in"),
        ("clinic", "w", "my NHS number? i don't have it with me"),
        ("clinic", "s", "this is ridiculous, i've called three times"),
        ("clinic", "w", "speaking of which, did the referral go through?"),
        ("clinic", "s", "i'm calling on behalf of my mum, she's ninety one"),
        ("clinic", "w", "birth certificate copies cost 11 pounds"),
        ("clinic", "s", "was he born here? no, he was born in dublin, i think"),
        # util
        ("util", "w", "the meter reading is 04417"),
        ("util", "s", "the meter reads oh four four one seven"),
        ("util", "w", "what's the weather in zip 10001"),
        ("util", "s", "is there an outage in the nine four one one oh area"),
        ("util", "w", "my zip is 60614, do you service that area"),
        ("util", "w", "turn left on main street, the house is the blue one"),
        ("util", "s", "it's on the corner of elm and fifth, the blue house"),
        ("util", "s", "the ticket number is eight eight two one nine oh"),
        ("util", "w", "i'm on highway 101 so the signal might drop"),
        ("util", "w", "the router model is TL-WR840N"),
        ("util", "w", "the service address is the same as before"),
        ("util", "s", "press one for the I T helpdesk"),
        ("util", "s", "we moved in on the third of may"),
        ("util", "s", "i live on maple avenue, up at the north end"),
        ("util", "s", "the street is spelled E L M, elm street, by the school"),
        # uk
        ("uk", "w", "national insurance contributions went up 2%"),
        ("uk", "s", "my N I number's on my payslip, can i call back"),
        ("uk", "w", "i'm calling from the london branch"),
        ("uk", "w", "the passport office opens at 9"),
        ("uk", "s", "the passport renewal costs like eighty eight pounds"),
        ("uk", "s", "i'm in the U K till the end of june"),
        ("uk", "w", "my postcode changed when they built the new estate"),
        ("uk", "w", "the sort code field won't accept dashes"),
        ("uk", "s", "the seventy three bus goes right past the surgery"),
        ("uk", "w", "flight BA 2490 lands at 14:05"),
        ("uk", "s", "the G P surgery on the high street"),
        # id
        ("id", "w", "my driver's license expired in 2022"),
        ("id", "s", "the D M V said it takes, like, ten business days"),
        ("id", "w", "do i need a passport or is a driver's license enough?"),
        ("id", "w", "form I-9 asks for two forms of id"),
        ("id", "s", "the social security office closes at four"),
        ("id", "w", "i need a 1040 and a 1099"),
        ("id", "s", "i lost my wallet with my license and like two cards"),
        ("id", "w", "the license renewal fee is $38.25"),
        # name / generic
        ("neg", "w", "this is my third call today"),
        ("neg", "s", "yeah this is about the letter you sent"),
        ("name", "w", "my name is spelled wrong on the statement"),
        ("name", "s", "sorry, who am i speaking to?"),
        ("name", "w", "the account holder is my late father"),
        ("name", "s", "it's under my wife's name i think"),
        ("name", "s", "my name is, um, actually can you hold on a second"),
        ("name", "w", "yes, speaking"),
        ("name", "s", "this is she"),
        ("neg", "w", "this is taking forever"),
        ("neg", "w", "i'm calling from the springfield office"),
        ("name", "s", "i'm the account holder, yes"),
        # addr
        ("addr", "w", "suite 200 is on the second floor"),
        ("addr", "s", "is the branch on fifth avenue still open"),
        ("addr", "w", "the office is at the corner of main and 3rd"),
        ("addr", "w", "we're in the 75201 area"),
        ("addr", "w", "i moved out of illinois last year"),
        ("addr", "s", "my new place is in austin, texas"),
    ]
    for grp, f, text in neg:
        RECS.append({"group": grp, "form": "written" if f == "w" else "spoken", "parts": [text]})


# ---------------------------------------------------------------------------
def main():
    singles()
    combos()
    specials()
    negatives()
    R.shuffle(RECS)

    out_lines = []
    per = Counter()
    utt_forms = Counter()
    n_neg = 0
    for i, rec in enumerate(RECS, 1):
        text, ents = build(rec["parts"])
        prev_end = -1
        for e in ents:
            sur = e.pop("_surface")
            assert text[e["start"]:e["end"]] == sur, (text, e, sur)
            assert sur == sur.strip(), sur
            assert sur[0].isalnum() or sur[0] == "+", ("leading punct", sur)
            assert sur[-1].isalnum(), ("trailing punct", sur)
            assert e["start"] >= prev_end, ("overlap", text)
            prev_end = e["end"]
            per[(e["type"], e["form"])] += 1
        if not ents:
            n_neg += 1
        utt_forms[rec["form"]] += 1
        assert rec["form"] in ("written", "spoken")
        out_lines.append(json.dumps({"id": "h5-%03d" % i, "form": rec["form"], "text": text,
                                     "entities": ents, "group": rec["group"]}, ensure_ascii=False))
    assert len(set(out_lines)) == len(out_lines)
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out_lines) + "\n")

    print("wrote %d utterances to %s" % (len(out_lines), OUT))
    print("negatives: %d, positives: %d" % (n_neg, len(out_lines) - n_neg))
    print("utterance forms:", dict(utt_forms))
    types = sorted({t for t, _ in per})
    print("%-20s %8s %8s" % ("type", "written", "spoken"))
    low = []
    for t in types:
        w, s = per[(t, "written")], per[(t, "spoken")]
        print("%-20s %8d %8d" % (t, w, s))
        if w < 6 or s < 6:
            low.append(t)
    print("total entities:", sum(per.values()))
    print("types with < 6 in a form:", low or "none")


if __name__ == "__main__":
    main()
