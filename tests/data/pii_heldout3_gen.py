"""Third held-out PII set: realistic phone-call utterances (speech-recognizer style).

Written by an evaluator who read only docs/pii.md (API, type names, coverage) and the JSONL
format; not the detector, not the other corpora.  Fixed seed; regenerate with

    .venv/bin/python tests/data/pii_heldout3_gen.py

Template markup: ``{KIND[.variant][:style]}`` is replaced by a generated identifier rendered
in that style and labeled; everything else is unlabeled.  Kinds: CC, SSN, PHONE, EMAIL, IBAN,
ABA, ACCT, MID, CVV, CVV4, EXP, DOB.  Literal labeled spans can also be written as
``[[TYPE|surface]]`` (used for hand-made values that are checked separately).
"""

from __future__ import annotations

import json
import random
import re
import string
from pathlib import Path

import phonenumbers

SEED = 20261203
rng = random.Random(SEED)
OUT = Path(__file__).with_name("pii_heldout3.jsonl")

UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december"]
ORD = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh", 8: "eighth",
       9: "ninth", 10: "tenth", 11: "eleventh", 12: "twelfth", 13: "thirteenth", 14: "fourteenth",
       15: "fifteenth", 16: "sixteenth", 17: "seventeenth", 18: "eighteenth", 19: "nineteenth",
       20: "twentieth", 21: "twenty first", 22: "twenty second", 23: "twenty third", 24: "twenty fourth",
       25: "twenty fifth", 26: "twenty sixth", 27: "twenty seventh", 28: "twenty eighth"}
FILLERS = ["um", "uh", "uhh", "umm", "hmm", "er"]
ASIDES = ["hang on", "excuse me", "just a moment", "hold on a sec", "let me see", "bear with me",
          "sorry my glasses", "hold on the dog is barking", "just a second", "sorry it's really small print",
          "where was i", "okay", "let me grab it", "hang on my kid is yelling"]
FAMOUS = {"4111111111111111", "4242424242424242", "5555555555554444", "378282246310005", "6011111111111117",
          "4012888888881881", "5105105105105100", "078051120", "123456789", "219099999"}


# ---------------------------------------------------------------- identifiers with checksums
def luhn_ok(d: str) -> bool:
    s = 0
    for i, ch in enumerate(reversed(d)):
        x = int(ch)
        if i % 2 == 1:
            x *= 2
            if x > 9:
                x -= 9
        s += x
    return s % 10 == 0


def luhn_complete(prefix: str, length: int) -> str:
    while True:
        body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
        for c in string.digits:
            if luhn_ok(body + c):
                n = body + c
                break
        if n not in FAMOUS and not re.search(r"(\d)\1{4}", n):
            return n


def card(variant: str | None) -> tuple[str, list[int]]:
    v = variant or rng.choice(["visa", "visa", "visa", "mc", "mc", "mc2", "disc", "amex"])
    if v == "visa":
        return luhn_complete("4", 16), [4, 4, 4, 4]
    if v == "visa13":
        return luhn_complete("4", 13), [4, 3, 3, 3]
    if v == "mc":
        return luhn_complete(str(rng.randint(51, 55)), 16), [4, 4, 4, 4]
    if v == "mc2":
        return luhn_complete(str(rng.randint(2221, 2720)), 16), [4, 4, 4, 4]
    if v == "amex":
        return luhn_complete(rng.choice(["34", "37"]), 15), [4, 6, 5]
    if v == "disc":
        return luhn_complete(rng.choice(["6011", "65", str(rng.randint(644, 649))]), 16), [4, 4, 4, 4]
    if v == "diners":
        return luhn_complete(rng.choice(["36", "30" + str(rng.randint(0, 5))]), 14), [4, 6, 4]
    if v == "jcb":
        return luhn_complete(str(rng.randint(3528, 3589)), 16), [4, 4, 4, 4]
    if v == "up19":
        return luhn_complete("62" + str(rng.randint(2126, 2925))[1:], 19), [4, 4, 4, 4, 3]
    if v == "up":
        return luhn_complete("62" + str(rng.randint(2126, 2925))[1:], 16), [4, 4, 4, 4]
    raise ValueError(v)


def ssn_ok(d: str) -> bool:
    a, g, s = d[:3], d[3:5], d[5:]
    return a not in ("000", "666") and a[0] != "9" and g != "00" and s != "0000" and d not in FAMOUS


def ssn() -> str:
    while True:
        d = f"{rng.randint(1, 899):03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
        if ssn_ok(d) and not re.search(r"(\d)\1{3}", d):
            return d


def aba_ok(d: str) -> bool:
    w = [3, 7, 1] * 3
    return len(d) == 9 and sum(int(c) * x for c, x in zip(d, w)) % 10 == 0 and (
        0 <= int(d[:2]) <= 12 or 21 <= int(d[:2]) <= 32 or 61 <= int(d[:2]) <= 72 or d[:2] == "80")


def aba() -> str:
    while True:
        p = rng.choice(["0", "1", "2", "3"])
        first2 = {"0": f"0{rng.randint(1, 9)}", "1": f"{rng.randint(10, 12)}", "2": f"{rng.randint(21, 32)}",
                  "3": f"{rng.randint(61, 72)}"}[p]
        body = first2 + "".join(rng.choice(string.digits) for _ in range(6))
        for c in string.digits:
            if aba_ok(body + c):
                return body + c


def iban_check(country: str, bban: str) -> str:
    rearr = bban + country + "00"
    num = "".join(str(int(ch, 36)) for ch in rearr)
    return f"{98 - int(num) % 97:02d}"


def iban_ok(s: str) -> bool:
    r = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in r)) % 97 == 1


def digits(n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def iban(country: str) -> str:
    if country == "DE":
        bban = str(rng.randint(1, 8)) + digits(7) + digits(10)
    elif country == "GB":
        bban = rng.choice(["NWBK", "BARC", "LOYD", "HBUK", "MIDL"]) + digits(6) + digits(8)
    elif country == "NL":
        bban = rng.choice(["ABNA", "RABO", "INGB", "TRIO"]) + digits(10)
    elif country == "IE":
        bban = rng.choice(["AIBK", "BOFI"]) + digits(6) + digits(8)
    elif country == "FR":
        bank, branch, acct = digits(5), digits(5), digits(11)
        key = 97 - ((89 * int(bank) + 15 * int(branch) + 3 * int(acct)) % 97)
        bban = bank + branch + acct + f"{key:02d}"
    elif country == "ES":
        bank, branch, acct = digits(4), digits(4), digits(10)
        w = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]

        def dc(s: str) -> str:
            v = 11 - sum(int(c) * x for c, x in zip(s, w)) % 11
            return "0" if v == 11 else "1" if v == 10 else str(v)
        bban = bank + branch + dc("00" + bank + branch) + dc(acct) + acct
    elif country == "BE":
        first = digits(10)
        chk = int(first) % 97 or 97
        bban = first + f"{chk:02d}"
    elif country == "CH":
        bban = digits(5) + digits(12)
    elif country == "PL":
        bban = digits(24)
    else:
        raise ValueError(country)
    return country + iban_check(country, bban) + bban


AREA = ["212", "312", "415", "617", "713", "206", "303", "404", "503", "614", "702", "816", "919", "480",
        "305", "612", "214", "313", "720", "971", "267", "832", "646", "773", "602"]


def phone(variant: str | None) -> str:
    while True:
        if variant == "uk":
            n = "7" + str(rng.choice([4, 5, 7, 8, 9])) + digits(8)
            pn = phonenumbers.parse("+44" + n)
        else:
            exch = str(rng.randint(2, 9)) + digits(2)
            if exch == "555" or exch[1:] == "11":
                continue
            n = rng.choice(AREA) + exch + digits(4)
            pn = phonenumbers.parse("+1" + n)
        if phonenumbers.is_valid_number(pn):
            return n


# ---------------------------------------------------------------- speech renderers
class Speaker:
    """Per-utterance speaking habits."""

    def __init__(self) -> None:
        self.zero = rng.choice(["oh", "oh", "zero"])
        self.doubles = rng.random() < 0.6
        self.style = rng.choice(["digits", "digits", "pairs", "mixed"])

    def unit(self, c: str) -> str:
        return self.zero if c == "0" else UNITS[int(c)]

    def read_digits(self, s: str) -> list[str]:
        out, i = [], 0
        while i < len(s):
            run = 1
            while i + run < len(s) and s[i + run] == s[i]:
                run += 1
            if self.doubles and run >= 3 and rng.random() < 0.6:
                out += ["triple", self.unit(s[i])]
                i += 3
            elif self.doubles and run >= 2 and rng.random() < 0.8:
                out += ["double", self.unit(s[i])]
                i += 2
            else:
                out.append(self.unit(s[i]))
                i += 1
        return out

    def read_pair(self, p: str) -> list[str]:
        a, b = int(p[0]), int(p[1])
        if a == 0:
            if b == 0:
                return rng.choice([["double", self.zero], [self.zero, self.zero]])
            return [self.zero, UNITS[b]]
        if a == 1:
            return [TEENS[b]]
        return [TENS[a]] + ([UNITS[b]] if b else [])

    def read_group(self, g: str, style: str) -> list[str]:
        if style == "hundreds" and len(g) == 3 and g[0] != "0":
            if g[1:] == "00":
                return [UNITS[int(g[0])], "hundred"]
            if g[1] == "0":
                return [UNITS[int(g[0])], "hundred", UNITS[int(g[2])]]
            return [UNITS[int(g[0])], "hundred"] + self.read_pair(g[1:])
        if style == "hundreds" and len(g) == 4 and g[2:] == "00" and g[0] != "0":
            if g[1] == "0":
                return [UNITS[int(g[0])], "thousand"]
            return self.read_pair(g[:2]) + ["hundred"]
        if style in ("pairs", "hundreds") and len(g) >= 2:
            out = []
            if len(g) % 2:
                out.append(self.unit(g[0]))
                g = g[1:]
            for i in range(0, len(g), 2):
                out += self.read_pair(g[i:i + 2])
            return out
        return self.read_digits(g)

    def group_style(self) -> str:
        if self.style == "mixed":
            return rng.choice(["digits", "pairs", "hundreds"])
        if self.style == "pairs":
            return rng.choice(["pairs", "pairs", "hundreds", "digits"])
        return "digits" if rng.random() < 0.85 else "pairs"

    def read_groups(self, gs: list[str]) -> list[list[str]]:
        out: list[list[str]] = []
        for g in gs:
            words = self.read_group(g, self.group_style())
            # a bare tens word or "hundred/thousand" before a word that could continue it is ambiguous
            # for a listener too: read the previous group digit by digit instead
            if out and (out[-1][-1] in TENS.values() or out[-1][-1] in ("hundred", "thousand")) and (
                    words[0] in UNITS[1:] or words[0] in TENS.values() or words[0] in TEENS):
                out[-1] = self.read_digits(gs[len(out) - 1])
            out.append(words)
        return out


def split_groups(d: str, sizes: list[int]) -> list[str]:
    out, i = [], 0
    for n in sizes:
        out.append(d[i:i + n])
        i += n
    if i < len(d):
        out.append(d[i:])
    return [g for g in out if g]


def join_spoken(groups: list[list[str]], seps: str = "mixed", fillers: float = 0.0) -> str:
    parts = []
    for k, words in enumerate(groups):
        w = list(words)
        if fillers and len(w) > 2 and rng.random() < fillers:
            # only where a listener still hears the same digits: not inside "forty five",
            # "double six", "four hundred ..."
            ok = [k for k in range(1, len(w)) if w[k - 1] not in TENS.values() and w[k - 1] not in ("double", "triple")
                  and w[k] != "hundred" and w[k - 1] != "hundred" and w[k] != "thousand"]
            if ok:
                w.insert(rng.choice(ok), rng.choice(FILLERS))
        txt = " ".join(w)
        if k:
            sep = {"comma": ", ", "space": " ", "dash": " dash " if False else ", "}.get(seps) or rng.choice(
                [", ", " ", " ", ", ", "... ", " - "])
            if fillers and rng.random() < fillers:
                sep = f" {rng.choice(FILLERS)} "
            parts.append(sep)
        parts.append(txt)
    return "".join(parts)


def render_number(d: str, sizes: list[int], style: str, sp: Speaker, letters_ok: bool = False) -> tuple[str, str, bool]:
    """Return (pre, surface, decodable).  pre is unlabeled text said before the value (restarts)."""
    gs = split_groups(d, sizes)
    if len(gs) < 2 and style in ("sa", "s2", "sr", "sc", "wa", "w2", "mix"):
        gs = [d[:len(d) // 2], d[len(d) // 2:]]
    if style == "w":
        return "", " ".join(gs), True
    if style == "wd":
        return "", "-".join(gs), True
    if style == "wc":
        return "", d, True
    if style == "ws":
        return "", " ".join(d), True
    if style == "wsl":  # written, grouped unevenly the way a recognizer chunks digits
        cuts, i, out = [], 0, []
        while i < len(d):
            n = rng.choice([2, 3, 3, 4, 5])
            out.append(d[i:i + n])
            i += n
        return "", " ".join(out), True
    if style == "mix":  # some groups digits, some words
        outs, sp_groups = [], sp.read_groups(gs)
        kinds = [rng.random() < 0.5 for _ in gs]
        if all(kinds) or not any(kinds):
            kinds[0] = not kinds[0]
        for g, words, as_digits in zip(gs, sp_groups, kinds):
            outs.append(g if as_digits else " ".join(words))
        return "", rng.choice([" ", ", "]).join(outs), True
    if style == "sd":
        sp.style = "digits"
        return "", join_spoken(sp.read_groups(gs), "comma"), True
    if style == "sp":
        sp.style = "pairs"
        return "", join_spoken(sp.read_groups(gs)), True
    if style == "s":
        return "", join_spoken(sp.read_groups(gs), fillers=0.15), True
    if style == "sf":  # lots of fillers, no punctuation
        return "", join_spoken(sp.read_groups(gs), "space", fillers=0.6), True
    if style == "sa":  # aside between two groups
        groups = sp.read_groups(gs)
        k = rng.randint(1, len(groups) - 1)
        left = join_spoken(groups[:k], "comma")
        right = join_spoken(groups[k:], "comma")
        return "", f"{left}, {rng.choice(ASIDES)}, {right}", True
    if style == "wa":  # written with an aside
        k = rng.randint(1, len(gs) - 1)
        return "", f"{' '.join(gs[:k])}, {rng.choice(ASIDES)}, {' '.join(gs[k:])}", True
    if style == "s2":  # recognizer put a sentence break in the middle
        groups = sp.read_groups(gs)
        k = rng.randint(1, len(groups) - 1)
        right = join_spoken(groups[k:], "comma")
        return "", f"{join_spoken(groups[:k], 'comma')}. {right[0].upper()}{right[1:]}", True
    if style == "w2":
        k = rng.randint(1, len(gs) - 1)
        return "", f"{' '.join(gs[:k])}. {' '.join(gs[k:])}", True
    if style == "sr":  # restart from the top
        groups = sp.read_groups(gs)
        k = rng.randint(1, len(groups) - 1)
        pre = join_spoken(groups[:k], "comma") + rng.choice([
            ", no wait, let me start over, ", " sorry, ", ", no, i'm gonna start again, ", " ... uh no. "])
        return pre, join_spoken(sp.read_groups(gs), "comma"), True
    if style == "sc":  # one group misread then corrected in place
        groups = sp.read_groups(gs)
        k = rng.randint(1, len(groups) - 1)
        g = gs[k]
        wrong = g[::-1] if g[::-1] != g else g[1:] + g[0]
        if wrong == g:
            wrong = str((int(g[0]) + 1) % 10) + g[1:]
        bad = " ".join(sp.read_digits(wrong))
        corr = rng.choice(["no", "no sorry", "sorry no", "i mean"])
        left = join_spoken(groups[:k], "comma")
        right = join_spoken(groups[k:], "comma")
        return "", f"{left}, {bad}, {corr}, {right}", False
    raise ValueError(style)


# ---------------------------------------------------------------- decoding check (my own)
WORDVAL = {w: str(i) for i, w in enumerate(UNITS)}
WORDVAL.update({"oh": "0", "o": "0"})
TEENVAL = {w: str(10 + i) for i, w in enumerate(TEENS)}
TENVAL = {w: k for k, w in TENS.items()}


def decode(surface: str) -> str:
    """Digits/letters a listener hears in a labeled span (my renderer's vocabulary only)."""
    s = re.sub(r"\b([A-Z]) as in [A-Za-z]+", r"\1", surface)
    toks = re.findall(r"[A-Za-z]+|\d", s)
    out, i = [], 0
    while i < len(toks):
        t = toks[i]
        lt = t.lower()
        nxt = toks[i + 1].lower() if i + 1 < len(toks) else ""
        if t.isdigit():
            out.append(t)
        elif t.isupper() and lt not in WORDVAL:
            out.append(t)
        elif lt in FILLERS:
            pass
        elif len(t) == 1 and t.isupper() and t != "O" or (len(t) == 1 and t == "O" and False):
            out.append(t)
        elif t == "O":
            out.append("O")
        elif lt in ("double", "triple"):
            out.append(WORDVAL[nxt] * (2 if lt == "double" else 3))
            i += 1
        elif lt in WORDVAL:
            if nxt == "hundred":
                i += 1
                n2 = toks[i + 1].lower() if i + 1 < len(toks) else ""
                n3 = toks[i + 2].lower() if i + 2 < len(toks) else ""
                if n2 in TENVAL:
                    out.append(WORDVAL[lt] + str(TENVAL[n2]) + (WORDVAL[n3] if n3 in WORDVAL and n3 not in ("oh", "o", "zero") else "0"))
                    i += 2 if n3 in WORDVAL and n3 not in ("oh", "o", "zero") else 1
                elif n2 in TEENVAL:
                    out.append(WORDVAL[lt] + TEENVAL[n2])
                    i += 1
                elif n2 in WORDVAL and n2 not in ("oh", "o", "zero"):
                    out.append(WORDVAL[lt] + "0" + WORDVAL[n2])
                    i += 1
                else:
                    out.append(WORDVAL[lt] + "00")
            elif nxt == "thousand":
                out.append(WORDVAL[lt] + "000")
                i += 1
            else:
                out.append(WORDVAL[lt])
        elif lt in TEENVAL:
            out.append(TEENVAL[lt])
            if nxt == "hundred":
                out.append("00")
                i += 1
        elif lt in TENVAL:
            if nxt in WORDVAL and nxt not in ("oh", "o", "zero"):
                out.append(str(TENVAL[lt]) + WORDVAL[nxt])
                i += 1
            else:
                out.append(str(TENVAL[lt]) + "0")
            n2 = toks[i + 1].lower() if i + 1 < len(toks) else ""
            if n2 == "hundred":
                out.append("00")
                i += 1
        i += 1
    return "".join(out)


def decode_email(surface: str) -> str:
    if "@" in surface:
        return surface.lower()
    toks = surface.lower().replace(",", " ").split()
    out = []
    for t in toks:
        if t == "dot":
            out.append(".")
        elif t == "at":
            out.append("@")
        elif t == "underscore":
            out.append("_")
        elif t in ("dash", "hyphen"):
            out.append("-")
        elif t in WORDVAL or t in TEENVAL or t in TENVAL:
            out.append(t)
        else:
            out.append(t)
    # join number words into digits
    txt = " ".join(out)
    txt = re.sub(r"((?:\b(?:%s)\b ?)+)" % "|".join(list(TENVAL) + list(TEENVAL) + UNITS + ["double", "oh"]),
                 lambda m: decode(m.group(1)) + " ", txt)
    return re.sub(r"\s+", "", txt)


# ---------------------------------------------------------------- value renderers per kind
def expiry(style: str) -> tuple[str, str]:
    m, y = rng.randint(1, 12), rng.randint(26, 32)
    zero = rng.choice(["oh", "zero"])
    mm = f"{m:02d}"
    if style == "w":
        return rng.choice([f"{mm}/{y}", f"{mm}/{y}", f"{mm}/20{y}", f"{m}/{y}", f"{mm} {y}"]), "written"
    forms = [
        f"{zero + ' ' + UNITS[m] if m < 10 else ' '.join(Speaker().read_pair(mm))} {' '.join(Speaker().read_pair(str(y)))}",
        f"{MONTHS[m - 1]} {' '.join(Speaker().read_pair(str(y)))}",
        f"{MONTHS[m - 1]} of twenty {' '.join(Speaker().read_pair(str(y)))}",
        f"{zero + ' ' + UNITS[m] if m < 10 else ' '.join(Speaker().read_pair(mm))} slash {' '.join(Speaker().read_pair(str(y)))}",
        f"{MONTHS[m - 1]} 20{y}",
    ]
    return rng.choice(forms), "spoken"


def dob(style: str) -> tuple[str, str]:
    y = rng.randint(1938, 2008)
    m = rng.randint(1, 12)
    d = rng.randint(1, 28)
    if style == "w":
        return rng.choice([f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{m}-{d}-{y % 100:02d}",
                           f"{MONTHS[m - 1].capitalize()} {d}, {y}", f"{m:02d}/{d:02d}/{y % 100:02d}"]), "written"
    yr = " ".join(Speaker().read_pair(f"{y // 100}")) + " " + " ".join(Speaker().read_pair(f"{y % 100:02d}"))
    if y >= 2000:
        yr = "two thousand" + (f" {UNITS[y % 10]}" if y % 10 else "")
    short = " ".join(Speaker().read_pair(f"{y % 100:02d}"))
    zero = rng.choice(["oh", "zero"])
    mnum = f"{zero} {UNITS[m]}" if m < 10 else " ".join(Speaker().read_pair(f"{m}"))
    dnum = f"{zero} {UNITS[d]}" if d < 10 else " ".join(Speaker().read_pair(f"{d}"))
    forms = [
        f"{MONTHS[m - 1]} {ORD[d]} {yr}",
        f"{MONTHS[m - 1]} {ORD[d]}, {yr}",
        f"the {ORD[d]} of {MONTHS[m - 1]} {yr}",
        f"{MONTHS[m - 1]} {d} {y}",
        f"{mnum} {dnum} {short}" if y < 2000 else f"{mnum} {dnum} {yr}",
        f"{MONTHS[m - 1]} {ORD[d]} {short}" if y < 2000 else f"{MONTHS[m - 1]} {ORD[d]} {yr}",
        f"{mnum} {dnum} {yr}",
    ]
    return rng.choice(forms), "spoken"


NAMES = ["maria", "james", "dana", "kwame", "li", "priya", "tom", "sofia", "derek", "aisha", "rob", "nguyen",
         "olga", "marcus", "jen", "carlos", "beth", "omar"]
SURN = ["lopez", "okafor", "kim", "patel", "smith", "reyes", "brennan", "nowak", "haddad", "chen", "miller",
        "dubois", "tran", "walsh", "greene", "oyelaran"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "comcast.net", "aol.com",
           "att.net", "proton.me", "verizon.net", "brightwaterlaw.com", "stmarys-health.org", "gmail.com"]


def email(style: str) -> tuple[str, str, str]:
    f, l = rng.choice(NAMES), rng.choice(SURN)
    num = rng.choice(["", "", str(rng.randint(1, 99)), str(rng.randint(1960, 2005))])
    sep = rng.choice([".", "_", "", "."])
    local = rng.choice([f + sep + l, f[0] + l, f + sep + l + num, l + num if num else f + l, f + num])
    dom = rng.choice(DOMAINS)
    addr = f"{local}@{dom}"
    if style == "w":
        return addr, addr, "written"
    sp = Speaker()

    def say_local(part: str) -> str:
        out = []
        for tok in re.findall(r"[a-z]+|\d+|[._-]", part):
            if tok == ".":
                out.append("dot")
            elif tok == "_":
                out.append("underscore")
            elif tok == "-":
                out.append("dash")
            elif tok.isdigit():
                if len(tok) == 4:
                    out.append(" ".join(sp.read_pair(tok[:2]) + sp.read_pair(tok[2:])))
                elif len(tok) == 2 and rng.random() < 0.6:
                    out.append(" ".join(sp.read_pair(tok)))
                else:
                    out.append(" ".join(UNITS[int(c)] for c in tok))
            elif len(tok) == 1:
                out.append(tok)
            else:
                out.append(" ".join(tok) if style == "spell" and rng.random() < 0.5 else tok)
        return " ".join(out)

    dom_words = " dot ".join(d.replace("-", " dash ") for d in dom.split("."))
    return addr, f"{say_local(local)} at {dom_words}", "spoken"


def say_letters(s: str, sp: Speaker, phonetic: bool = False) -> str:
    out = []
    words = {"A": "Adam", "B": "boy", "C": "Charlie", "D": "David", "E": "Edward", "F": "Frank", "G": "George",
             "H": "Henry", "J": "John", "K": "king", "L": "Larry", "M": "Mary", "N": "Nancy", "P": "Peter",
             "R": "Robert", "S": "Sam", "T": "Tom", "V": "Victor", "W": "William", "X": "x-ray", "Z": "zebra",
             "Q": "queen", "Y": "yellow", "U": "umbrella", "I": "Ida", "O": "Ocean"}
    for c in s:
        if c.isalpha():
            out.append(f"{c} as in {words[c]}" if phonetic else c)
        else:
            out.append(sp.unit(c))
    return " ".join(out)


def member_id(variant: str | None) -> tuple[str, list[int], str]:
    """Returns (value, group sizes for the digit part, letter prefix)."""
    v = variant or rng.choice(["alpha3", "alpha1", "digits", "alpha2"])
    if v == "alpha3":
        return "", [3, 3, 3], "".join(rng.choice("BCDFGHJKLMNPRSTVWXZ") for _ in range(3))
    if v == "alpha2":
        return "", [4, 4], "".join(rng.choice("BCDFGHJKLMNPRSTVWXZ") for _ in range(2))
    if v == "alpha1":
        return "", [4, 4], rng.choice("BCDFGHJKLMNPRSTVWXZ")
    if v == "mrn":
        return "", [4, 4], ""
    if v == "digits":
        return "", [3, 3, 4], ""
    raise ValueError(v)


# ---------------------------------------------------------------- template expansion
PH = re.compile(r"\{([A-Z0-9]+)(?:\.([a-z0-9]+))?(?::([a-z0-9]+))?\}|\[\[([A-Z_]+)\|([^\]]+)\]\]")
TYPE = {"CC": "CREDIT_CARD", "SSN": "US_SSN", "PHONE": "PHONE_NUMBER", "EMAIL": "EMAIL_ADDRESS",
        "IBAN": "IBAN_CODE", "ABA": "ABA_ROUTING_NUMBER", "ACCT": "US_BANK_NUMBER", "MID": "MEMBER_ID",
        "CVV": "CARD_CVV", "CVV4": "CARD_CVV", "EXP": "CARD_EXPIRY", "DOB": "DATE_OF_BIRTH"}


def is_spoken(surface: str) -> bool:
    low = surface.lower()
    return bool(re.search(r"\b(%s|oh|double|triple|hundred|thousand|dot|at)\b" % "|".join(
        UNITS + TEENS + list(TENS.values())), low))


def expand(template: str) -> tuple[str, list[dict], list[dict]]:
    sp = Speaker()
    text, ents, checks, pos = "", [], [], 0
    for m in PH.finditer(template):
        text += template[pos:m.start()]
        pos = m.end()
        if m.group(4):  # literal labeled span
            surface = m.group(5)
            start = len(text)
            text += surface
            ents.append({"type": m.group(4), "start": start, "end": len(text),
                         "form": "spoken" if is_spoken(surface) else "written"})
            checks.append({"kind": "literal", "surface": surface})
            continue
        kind, var, style = m.group(1), m.group(2), m.group(3) or "s"
        pre, decodable, expect = "", True, None
        if kind == "CC":
            val, sizes = card(var)
            pre, surface, decodable = render_number(val, sizes, style, sp)
            expect = val
        elif kind == "SSN":
            val = ssn()
            sizes = [3, 2, 4] if rng.random() < 0.85 or style.startswith("w") else [3, 3, 3]
            pre, surface, decodable = render_number(val, sizes, style, sp)
            expect = val
        elif kind == "PHONE":
            val = phone(var)
            if var == "uk":
                sizes = [4, 6]
                pre, surface, decodable = render_number(val, sizes, style, sp)
                if style.startswith("w"):
                    surface = "+44 " + surface
                else:
                    surface = "plus four four " + surface
                expect = "44" + val
            else:
                sizes = [3, 3, 4] if rng.random() < 0.8 else [3, 3, 2, 2]
                pre, surface, decodable = render_number(val, sizes, style, sp)
                if rng.random() < 0.15:
                    surface = ("1-" if style in ("wd",) else "1 " if style.startswith("w") else "one ") + surface
                    expect = "1" + val
                else:
                    expect = val
        elif kind == "ABA":
            val = aba()
            sizes = rng.choice([[9], [3, 3, 3], [4, 4, 1], [3, 3, 3]])
            pre, surface, decodable = render_number(val, sizes, style, sp)
            expect = val
        elif kind == "ACCT":
            n = rng.choice([8, 10, 10, 11, 12, 12, 9, 13])
            val = digits(n)
            while luhn_ok(val) and n >= 13:
                val = digits(n)
            sizes = {8: [4, 4], 9: [3, 3, 3], 10: [3, 3, 4], 11: [4, 3, 4], 12: [4, 4, 4], 13: [4, 4, 5]}[n]
            pre, surface, decodable = render_number(val, sizes, style, sp)
            expect = val
        elif kind in ("CVV", "CVV4"):
            val = digits(4 if kind == "CVV4" else 3)
            if style in ("s", "sd") and rng.random() < 0.3 and kind == "CVV" and val[0] != "0":
                surface = " ".join(sp.read_group(val, "hundreds"))
            else:
                pre, surface, decodable = render_number(val, [len(val)], style, sp)
            expect = val
        elif kind == "EXP":
            surface, _ = expiry("w" if style.startswith("w") else "s")
            decodable = False
        elif kind == "DOB":
            surface, _ = dob("w" if style.startswith("w") else "s")
            decodable = False
        elif kind == "EMAIL":
            addr, surface, _ = email(style)
            checks_email = addr
            expect = addr
        elif kind == "IBAN":
            val = iban(var.upper())
            gs = [val[i:i + 4] for i in range(0, len(val), 4)]
            if style == "w":
                surface = " ".join(gs)
            elif style == "wc":
                surface = val
            else:
                parts = []
                for g in gs:
                    words = []
                    run = ""
                    for c in g:
                        if c.isalpha():
                            if run:
                                words += sp.read_digits(run)
                                run = ""
                            words.append(c)
                        else:
                            run += c
                    if run:
                        # pairs only when the group does not end in a bare tens word ("ninety", then "four ...")
                        words += sp.read_digits(run) if rng.random() < 0.7 or len(run) % 2 or run[-1] == "0" \
                            else sp.read_group(run, "pairs")
                    parts.append(" ".join(words))
                surface = rng.choice([", ", " ", ", "]).join(parts)
            expect = val
        elif kind == "MID":
            _, sizes, prefix = member_id(var)
            num = digits(sum(sizes))
            val = prefix + num
            if style.startswith("w"):
                _, dpart, _ = render_number(num, sizes, style, sp)
                surface = (prefix + rng.choice(["", " ", "-"]) + dpart) if prefix else dpart
            elif style == "phon":
                _, dpart, _ = render_number(num, sizes, "sd", sp)
                surface = say_letters(prefix, sp, phonetic=True) + ", " + dpart
            else:
                pre, dpart, decodable = render_number(num, sizes, style, sp)
                surface = (say_letters(prefix, sp) + " " + dpart) if prefix else dpart
            expect = val
        else:
            raise ValueError(kind)
        text += pre
        start = len(text)
        text += surface
        typ = TYPE[kind]
        form = "spoken" if is_spoken(surface) else "written"
        if kind == "EMAIL":
            form = "written" if "@" in surface else "spoken"
        ents.append({"type": typ, "start": start, "end": len(text), "form": form})
        checks.append({"kind": kind, "surface": surface, "expect": expect, "decodable": decodable})
    text += template[pos:]
    return text, ents, checks


# ---------------------------------------------------------------- positives
POS = {
    "card": [
        "yeah hi um i need to dispute a charge the card number is {CC:s}",
        "Card number {CC:w} expiration {EXP:w} and the CVV is {CVV:w}",
        "ok so the number on the front is {CC.amex:s} and the four digit code on the front is {CVV4:s}",
        "it's a mastercard {CC.mc:sa}",
        "my card is {CC:sr}",
        "ok let me read that back to you {CC:sd} is that correct",
        "{CC:w} that's the card i used",
        "The card number is {CC:s2}",
        "i have my debit card right here hold on okay {CC:mix}",
        "its a discover card {CC.disc:s} expires {EXP:s} security code {CVV:s}",
        "the long number on my card, {CC:ws}",
        "I'm visiting from Osaka, it's a JCB card, {CC.jcb:w}",
        "diners club number is {CC.diners:s}",
        "the number's nineteen digits long, {CC.up19:w}",
        "it's an old visa, only thirteen digits, {CC.visa13:s}",
        "card number uh {CC:sf}",
        "yes the new card, {CC.mc2:s}, i activated it yesterday",
        "so the card is {CC:sc}",
        "number on the card is {CC.amex:w} and it expires {EXP:s}",
        "umm okay {CC:wa} and thats it",
        "I'll pay with my visa {CC.visa:wd}",
        "card {CC:wc} exp {EXP:w} cvc {CVV:w}",
        "the card that got declined ends in 0 0 4 1 but the one i want to use is {CC:s}",
        "you can put it on the amex {CC.amex:sp}",
        "the three digits on the back {CVV:s}",
        "cvc is {CVV:w}",
        "{CVV:s} is the security code",
        "and the code on the back is um {CVV:sd}",
        "security number {CVV:s} and the expiration date {EXP:s}",
        "the cvv you gave me was {CVV:ws} is that right",
        "expires {EXP:s}",
        "exp date is {EXP:w}",
        "valid thru {EXP:s} and the numbers on the back are {CVV:s}",
        "Expiration {EXP:s}. CVV {CVV:w}.",
        "the card number is {CC:s}, expiry {EXP:s}",
        "OK. {CC:w}. Expires {EXP:w}.",
        "sorry it's the unionpay one, {CC.up:s}",
        "alright my card number, ready? {CC:sa}",
        "four digit amex code {CVV4:w}",
        "the new card expires in {EXP:s} and the security code is {CVV:sd}",
        "I want to add a card to my wallet, {CC:s}",
        "card is {CC.mc:mix} expiration date {EXP:w}",
    ],
    "ssn": [
        "my social is {SSN:s}",
        "social security number {SSN:wd}",
        "s s n {SSN:sd}",
        "{SSN:wd}, that's my social",
        "for verification my social security number is {SSN:sp}",
        "my social is {SSN:sa}",
        "uh my social security, {SSN:sr}",
        "ss number {SSN:wc}",
        "the social on the account is {SSN:s}",
        "Social: {SSN:ws}",
        "my social security number is {SSN:s} and my date of birth is {DOB:s}",
        "social {SSN:w} date of birth {DOB:w}",
        "it's {SSN:sf} that's the social",
        "Last name Okafor, social security {SSN:wd}",
        "my husband's social is {SSN:s}",
        "tax id is my social, {SSN:wc}",
        "okay the social security number on file {SSN:sd} is that right",
        "the full social is {SSN:mix}",
    ],
    "phone": [
        "you can reach me at {PHONE:s}",
        "my cell is {PHONE:wd}",
        "best callback number is {PHONE:w}",
        "call me back on {PHONE:sa}",
        "my number changed it's now {PHONE:s}",
        "{PHONE:wd} is my home number",
        "my mobile is {PHONE.uk:w}",
        "phone number on file should be {PHONE:sd}",
        "so that's {PHONE:s} correct",
        "text me at {PHONE:wc}",
        "my daughter's number is {PHONE:sp} she's the emergency contact",
        "the number is {PHONE:s2}",
        "ok my number is {PHONE:w2}",
        "I'm abroad right now, my mobile is {PHONE.uk:sd}",
        "call my work phone {PHONE:mix}",
        "yeah it's {PHONE:sf}",
        "you can reach me at {PHONE:w} or email {EMAIL:s}",
        "new phone number, {PHONE:wd}, and new email {EMAIL:w}",
    ],
    "email": [
        "my email is {EMAIL:s}",
        "email address {EMAIL:w}",
        "send it to {EMAIL:s} please",
        "it's {EMAIL:spell}",
        "{EMAIL:w} is the email on file",
        "the email should be {EMAIL:s} not the old one",
        "can you update my email to {EMAIL:spell}",
        "Email: {EMAIL:w}",
        "send the statement to {EMAIL:s}",
        "the email you have is {EMAIL:s} right",
        "uh it's {EMAIL:s} all lowercase",
        "my wife's email {EMAIL:w}",
    ],
    "iban": [
        "I'm transferring from my account in Germany, the IBAN is {IBAN.de:w}",
        "iban {IBAN.gb:s}",
        "my IBAN is {IBAN.nl:wc}",
        "the IBAN over there is {IBAN.fr:w}",
        "the receiving account is {IBAN.es:w}",
        "IBAN {IBAN.be:s}",
        "it's an irish iban {IBAN.ie:w}",
        "send it to {IBAN.ch:wc} that's my swiss account",
        "the polish IBAN is {IBAN.pl:w}",
        "the IBAN is {IBAN.de:s}",
        "beneficiary IBAN {IBAN.gb:w}",
        "my dutch IBAN {IBAN.nl:s}",
    ],
    "bank": [
        "routing number {ABA:s} and account {ACCT:s}",
        "the routing is {ABA:w} checking account number {ACCT:w}",
        "for direct deposit, routing {ABA:sd}, account number {ACCT:sa}",
        "{ABA:wc} is the routing number",
        "my account number is {ACCT:s}",
        "savings account {ACCT:w}",
        "my account number is {ACCT:w}, actually sorry that's the old one, it's {ACCT:s}",
        "mortgage account number {ACCT:wc}",
        "beneficiary account number {ACCT:s} routing {ABA:s}",
        "the account is {ACCT:sf}",
        "checking {ACCT:mix}",
        "aba number {ABA:w}",
        "routing number is {ABA:sp}",
        "okay so account number {ACCT:sd} is that the checking or savings",
        "account number. {ACCT:s2}",
        "the account number is {ACCT:wsl}",
        "wire it to account {ACCT:w} routing {ABA:wc}",
        "my routing number, {ABA:sa}",
        "the account number on my statement is {ACCT:s}",
        "acct number {ACCT:ws}",
        "it's {ACCT:s}, that's my account number",
        "account {ACCT:sr}",
    ],
    "member": [
        "member ID is {MID:s}",
        "policy number {MID.alpha2:w}",
        "subscriber id {MID.alpha3:mix}",
        "MRN {MID.mrn:w}",
        "patient ID {MID.digits:s}",
        "my member number is {MID.alpha1:sd}",
        "policy number is {MID.alpha1:phon}",
        "the member id on the card is {MID.alpha3:w}",
        "insurance ID {MID.alpha3:s}",
        "customer number {MID.digits:s}",
        "my customer number is {MID.digits:wd}",
        "uh the policy number, {MID.digits:sa}",
        "{MID.alpha2:wc} is my member id",
        "subscriber number {MID.digits:s} and my date of birth is {DOB:s}",
        "member ID {MID.alpha3:w}, date of birth {DOB:w}",
        "medical record number {MID.mrn:s}",
        "patient number {MID.mrn:sf}",
        "the policy number is {MID.alpha2:s2}",
        "so that's member id {MID.alpha3:sd} correct",
        "my policy is {MID.alpha3:s}",
        "the member ID is {MID.alpha3:w} and the group number is 04417",
    ],
    "dob": [
        "date of birth {DOB:s}",
        "DOB {DOB:w}",
        "born {DOB:s}",
        "{DOB:s} that's my date of birth",
        "my birthday is {DOB:s}",
        "her date of birth is {DOB:w}",
        "date of birth is [[DATE_OF_BIRTH|april eighteenth. nineteen seventy one]]",
        "dob [[DATE_OF_BIRTH|oh seven oh three sixty two]]",
        "I was born on {DOB:s}",
        "the patient's date of birth {DOB:w}",
        "name is Derek Walsh, date of birth {DOB:s}",
        "date of birth, um, {DOB:s}",
        "birth date {DOB:w}",
        "his DOB is {DOB:s} he's my son",
        "born [[DATE_OF_BIRTH|the third of july nineteen sixty two]] in Cleveland",
        "date of birth is [[DATE_OF_BIRTH|nine twelve seventy]]",
        "{DOB:w} is my date of birth",
        "my date of birth is {DOB:s} and my phone is {PHONE:s}",
    ],
}

# hand-made positives (literal spans checked by hand below)
POS_LITERAL = [
    ("ins", "medicare number is [[MEMBER_ID|1EG4-TE5-MK73]]"),
]

# ---------------------------------------------------------------- negatives
NEG = {
    "bank": [
        "i want to transfer four hundred and twelve dollars to savings",
        "the balance should be $1,284.56 not $1,824.56",
        "your payment of two thousand three hundred forty one dollars posted on the fifteenth",
        "I was charged a 35 dollar overdraft fee on 11/03",
        "the APR went up to 24.99% and I never got a letter",
        "can you set up a transfer for the first of every month, 250 each",
        "reference number for this call is 4471 9902 1836",
        "the transaction id is 8839 2210 4476 1002",
        "card ending in 4417 was declined at the gas station",
        "the last four of my social are 6 6 1 2",
        "account ending oh nine three two",
        "I'm at the branch on 1420 Maple Avenue",
        "zip code is 60614",
        "my zip is nine oh two one oh",
        "the wire was for 12,500 euros on the 3rd",
        "the check number was 1047 and it cleared for 860",
        "i called at like 3:45 yesterday and waited forty five minutes",
        "I've been a customer since 1998",
        "the atm on fifth and main ate my card around nine thirty pm",
        "can you raise my daily limit to five hundred dollars",
        "the confirmation code is 7 7 4 1 9 0 2 2",
        "the CD matures in eighteen months at four point two five percent",
        "last four digits of the account are 3 3 0 1",
        "the last 4 of my card is 8 8 2 0 and it's the only card i have",
        "i deposited two checks one for 1,200 and one for 345.67",
        "it says pending for seventy two hours",
        "my mortgage payment is 2,184.33 a month",
        "case number 20261104-0917",
        "the branch number on the receipt is 0 4 4 7",
        "we spoke on november twenty second at about ten fifteen",
        "ok so that's twelve hundred forty dollars going to savings on friday",
        "the interest rate is 6.875 on a thirty year fixed",
    ],
    "card": [
        "my card got declined three times today for like twenty two ninety nine",
        "the dispute is for $189.40 from march 3rd",
        "the order number is 112-4479021-5583226",
        "tracking number is 1Z 4F8 W72 03 4471 2290",
        "the replacement card should arrive in 7 to 10 business days",
        "my limit is fifteen thousand and i'm at like eleven four",
        "i was at gate B22 for flight UA 1482 when it got declined",
        "ticket number is 4 4 1 9 0 0 2 7",
        "it was charged 3 times, 49.99 each",
        "the first six digits of the card are 4 5 3 2 7 7 if that helps",
        "the card ending in seven seven oh one was stolen",
        "order number 4471 2290 1183 7723",
        "I bought it on the 14th at 2:30 pm for three hundred and nine dollars",
        "the merchant says refund id 55 0192 8837",
        "my statement closes on the 28th",
        "I've had this card since 2014",
        "the annual fee is 95 dollars",
        "the confirmation number is triple four two nine one eight",
        "it's the one ending in double oh four one",
        "the ticket is for flight DL 2219 on december fourth",
        "i need a card sent to room 1207 at the hilton",
        "there's 2 charges for 12.50",
    ],
    "ins": [
        "claim number 2026 0418 7731",
        "the accident was on june 2nd around 5 pm on highway 101",
        "my deductible is 2,500 and i've met about 1,100 of it",
        "the adjuster said claim 44-81-0027 was approved for 3,480 dollars",
        "the car is a 2019 honda civic, about 48,000 miles",
        "my policy renews on the first of august",
        "the body shop estimate was four thousand two hundred",
        "i was in room 412 at st mary's for 3 nights",
        "we have 2 drivers on the policy and 3 vehicles",
        "coverage is 100 300 50",
        "the claim number is four seven seven one nine oh two two",
        "my premium went from 142 to 188 a month",
        "the tow was 14 miles and cost 275",
        "it happened at the intersection of 5th and 42nd street",
        "it's a 2,000 square foot house built in 1987",
        "the reference on the letter is REF 20 66 91",
        "the invoice number is 88 4410 27",
        "the storm hit on the night of the ninth around eleven",
        "the adjuster can come between 1 and 3 on tuesday",
        "i'm 67 and my wife is 64",
    ],
    "clinic": [
        "she takes 500 milligrams of metformin twice a day",
        "the doctor wants me on ten units of insulin before dinner",
        "the prescription is for 90 tablets, 3 refills",
        "my appointment is on march fourteenth at two fifteen",
        "she's in ward 7B bed 14",
        "he's 82 years old, born in 1943",
        "blood pressure was one forty two over ninety one",
        "the pharmacy on 3rd street, store number 4471",
        "take 1 tablet every 8 hours for 10 days",
        "the lab results came back, a1c is 6.8",
        "dr patel's office is extension 2 2 1 4",
        "i need to reschedule my 10:30 on the 22nd",
        "the rx number is 6 0 4 4 1 8 2",
        "her temperature was a hundred and one point four",
        "the copay for the 90 day supply is 12 dollars",
        "two puffs every four to six hours",
        "i'm 34 weeks pregnant and the due date is may 9th",
        "the lisinopril is 20 mg and the atorvastatin is 40",
        "she weighs 142 pounds and she's 5 foot 4",
        "he's in room four twelve b on the third floor",
        "can i get the 3 month supply instead of 30 days",
        "the fax number on the form is 0 0 0 4 1 7 2 2 9 1",
        "her follow up is on the 2nd of december at 9 15",
        "the vaccine was on 10/14 and the booster is due in 6 months",
        "my heart rate was 112 when i walked in",
        "i take the 0.5 milligram one at bedtime",
        "dial 9 then extension 4 4 0 7",
        "she was discharged on june 30 after 11 days",
    ],
    "util": [
        "my bill went from 84 dollars to 212 dollars",
        "the meter reading is 4 4 7 1 9 and i think it's wrong",
        "we used 1,240 kilowatt hours last month",
        "the outage started around six forty five this morning",
        "the technician window is 8 to 12 on friday the 9th",
        "i'm at 2218 oak street apartment 3 b",
        "service order number 5507 1182",
        "the thermostat is at 68",
        "can i pay 150 now and 150 on the 30th",
        "we moved in on the 1st of october 2025",
        "the number they gave me was 123 000 4567 and it doesn't work",
        "the work order is 77 4190 3318",
        "my internet is 300 megs and i'm getting like 40",
        "the box says model 4471 b serial number is on the back",
        "i've been on hold for 25 minutes",
        "the late fee was 15 dollars and 30 cents",
        "the ticket number they gave me is one one four seven two two nine",
        "it's unit 14 in building C, 3300 river road",
        "the new rate is 14.2 cents per kilowatt hour",
        "can you call back between 2 and 4",
        "the confirmation is 8 8 0 1 2 7 7 4 6 5 1",
        "our zip code is 0 2 1 3 8",
        "the letter says to call (099) 214-7730 but that's not a real number",
        "it said call 555 0147 after 6",
    ],
}

# uncovered kinds per docs/pii.md (postal address, driver licence, passport): left unlabeled
NEG_UNCOVERED = [
    ("bank", "my driver's license number is D 4 5 2 1 7 7 8 0 3"),
    ("ins", "the passport number is 5 4 8 2 1 9 0 7 3"),
    ("util", "service address is 4417 north halsted street chicago illinois 60613"),
]


NOTES = {
    "the member ID is {MID.alpha3:w} and the group number is 04417":
        "group number (employer plan, not the person) left unlabeled",
    "the rx number is 6 0 4 4 1 8 2": "prescription number treated as a reference number (negative); debatable",
    "he's 82 years old, born in 1943": "birth year alone is not a date of birth: negative; debatable",
    "the first six digits of the card are 4 5 3 2 7 7 if that helps": "partial card number (docs: not reported)",
    "medicare number is [[MEMBER_ID|1EG4-TE5-MK73]]": "Medicare MBI-shaped id labeled MEMBER_ID (format-valid, made up)",
    "my account number is {ACCT:w}, actually sorry that's the old one, it's {ACCT:s}":
        "both the old and the corrected account numbers are labeled",
    "the card that got declined ends in 0 0 4 1 but the one i want to use is {CC:s}":
        "last-4 mention left unlabeled, full card labeled",
}


def main() -> None:
    rows = []
    for dom, temps in POS.items():
        for t in temps:
            rows.append((dom, t, None))
    for dom, t in POS_LITERAL:
        rows.append((dom, t, None))
    for dom, temps in NEG.items():
        for t in temps:
            rows.append((dom, t, None))
    for dom, t in NEG_UNCOVERED:
        rows.append((dom, t, "uncovered kind per docs/pii.md; left unlabeled"))
    rng.shuffle(rows)
    out = []
    for i, (dom, t, note) in enumerate(rows):
        text, ents, checks = expand(t)
        form = "spoken" if any(e["form"] == "spoken" for e in ents) else "written"
        if not ents:  # a negative is "written" when the recognizer wrote its numbers as digits
            form = "written" if re.search(r"\d", text) else "spoken"
        note = note or NOTES.get(t)
        row = {"id": f"h3-{i + 1:03d}", "form": form, "text": text, "entities": ents, "group": dom}
        if note:
            row["note"] = note
        out.append((row, checks))
    with open(OUT, "w", encoding="utf-8") as f:
        for row, _ in out:
            f.write(json.dumps(row) + "\n")
    validate(out)
    return out


def validate(out) -> None:
    """Offsets point at the intended surfaces; decoded values pass their checksums."""
    problems = 0
    for row, checks in out:
        json.loads(json.dumps(row))
        assert len(row["entities"]) == len(checks)
        for e, c in zip(row["entities"], checks):
            span = row["text"][e["start"]:e["end"]]
            assert span == c["surface"], (row["id"], span, c["surface"])
            assert span == span.strip() and span
            kind = c["kind"]
            if kind == "literal":
                continue
            exp = c["expect"]
            if kind == "EMAIL":
                got = decode_email(span)
                ok = got == exp
            elif kind in ("EXP", "DOB"):
                continue
            elif not c["decodable"]:
                got = None
                ok = True
            else:
                got = decode(span)
                ok = got == exp
            if kind == "CC":
                ok = ok and luhn_ok(exp) and 13 <= len(exp) <= 19
            elif kind == "SSN":
                ok = ok and ssn_ok(exp)
            elif kind == "ABA":
                ok = ok and aba_ok(exp)
            elif kind == "IBAN":
                ok = ok and iban_ok(exp)
            elif kind == "PHONE":
                ok = ok and phonenumbers.is_valid_number(phonenumbers.parse("+" + (exp if len(exp) != 10 else "1" + exp)))
            if not ok:
                problems += 1
                print("PROBLEM", row["id"], kind, repr(span), got, exp)
        # entities do not overlap
        sp = sorted((e["start"], e["end"]) for e in row["entities"])
        assert all(a[1] <= b[0] for a, b in zip(sp, sp[1:])), row["id"]
    print(f"validated {len(out)} rows, {problems} problems")


if __name__ == "__main__":
    main()
