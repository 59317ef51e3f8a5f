"""Second independent held-out PII corpus (written without reading the detector).

Three domains (retail banking, insurance claims, clinic appointment line), caller and agent
turns, speech-recognizer style.  Fixed seed.  Writes tests/data/pii_heldout2.jsonl.

    .venv/bin/python tests/data/pii_heldout2_gen.py

Labeling decisions (from docs/pii.md):
  * policy / member / subscriber / patient / MRN / customer numbers -> MEMBER_ID
  * claim numbers: docs list "claim" as a negative label (not covered) -> left unlabeled
  * partial numbers ("ending in 4412", "last four of my social 3391") -> not labeled
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import phonenumbers

rng = random.Random(90210417)

UNITS = "zero one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}
FILLERS = ["uh", "um", "uhm", "er"]
ASIDES = ["hang on", "sorry", "let me see", "bear with me", "hold on a sec", "where was i", "just a moment",
          "i can barely read it", "my glasses", "okay"]
MONTHS = "january february march april may june july august september october november december".split()
ORD = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh", 8: "eighth",
       9: "ninth", 10: "tenth", 11: "eleventh", 12: "twelfth", 13: "thirteenth", 14: "fourteenth",
       15: "fifteenth", 16: "sixteenth", 17: "seventeenth", 18: "eighteenth", 19: "nineteenth", 20: "twentieth",
       21: "twenty first", 22: "twenty second", 23: "twenty third", 24: "twenty fourth", 25: "twenty fifth",
       26: "twenty sixth", 27: "twenty seventh", 28: "twenty eighth", 29: "twenty ninth", 30: "thirtieth",
       31: "thirty first"}
NUMWORDS = set(UNITS) | set(TEENS) | set(TENS.values()) | {"oh", "double", "triple", "hundred", "thousand"} | set(
    w for v in ORD.values() for w in v.split())


# ---------------------------------------------------------------- value generators
def rdig(n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def luhn_complete(prefix: str, length: int) -> str:
    body = prefix + rdig(length - len(prefix) - 1)
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def luhn_ok(s: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(s)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card(brand: str | None = None) -> str:
    brand = brand or rng.choice(["visa", "visa", "mc", "mc", "amex", "disc"])
    if brand == "visa":
        n = luhn_complete("4" + rdig(1), 16)
    elif brand == "mc":
        n = luhn_complete(rng.choice(["51", "52", "53", "54", "55", "2221", "2720"]), 16)
    elif brand == "amex":
        n = luhn_complete(rng.choice(["34", "37"]), 15)
    else:
        n = luhn_complete("6011", 16)
    assert luhn_ok(n)
    return n


def aba() -> str:
    p = rng.choice([f"{i:02d}" for i in list(range(1, 13)) + list(range(21, 33))])
    d = [int(c) for c in p + rdig(6)]
    s = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5])
    n = "".join(map(str, d)) + str((10 - s % 10) % 10)
    dd = [int(c) for c in n]
    assert (3 * (dd[0] + dd[3] + dd[6]) + 7 * (dd[1] + dd[4] + dd[7]) + dd[2] + dd[5] + dd[8]) % 10 == 0
    return n


def ssn() -> str:
    while True:
        a = rng.randint(1, 899)
        if a == 666:
            continue
        g = rng.randint(1, 99)
        s = rng.randint(1, 9999)
        n = f"{a:03d}{g:02d}{s:04d}"
        if n not in {"078051120", "219099999", "123456789"}:
            return n


AREAS = ["212", "312", "415", "617", "503", "720", "614", "919", "404", "713", "305", "602", "206", "973",
         "860", "412", "216", "480", "704", "813", "347", "646", "773", "510"]


def phone() -> str:
    while True:
        ex = str(rng.randint(2, 9)) + rdig(2)
        if ex[1:] == "11" or ex == "555":
            continue
        n = rng.choice(AREAS) + ex + rdig(4)
        if phonenumbers.is_valid_number(phonenumbers.parse(n, "US")):
            return n


def bad_phone() -> str:
    """10 digits shaped like a phone number but not a valid NANP number."""
    while True:
        n = rng.choice(["0", "1"]) + rdig(9)
        if not phonenumbers.is_valid_number(phonenumbers.parse(n, "US")):
            return n


def iban(country: str) -> str:
    if country == "GB":
        bban = rng.choice(["NWBK", "BARC", "LOYD", "HBUK", "MIDL"]) + rdig(14)
    elif country == "IE":
        bban = rng.choice(["AIBK", "BOFI"]) + rdig(14)
    elif country == "DE":
        bban = rdig(18)
    else:  # NL
        bban = rng.choice(["ABNA", "INGB", "RABO"]) + rdig(10)
    rearr = bban + country + "00"
    num = int("".join(str(int(c, 36)) for c in rearr))
    check = 98 - num % 97
    out = f"{country}{check:02d}{bban}"
    num2 = int("".join(str(int(c, 36)) for c in out[4:] + out[:4]))
    assert num2 % 97 == 1
    return out


def acct(n: int | None = None) -> str:
    return str(rng.randint(1, 9)) + rdig((n or rng.choice([8, 10, 12])) - 1)


# ---------------------------------------------------------------- spoken renderers
def w(d: str, zero: str = "oh") -> str:
    return zero if d == "0" else UNITS[int(d)]


def digitwise(s: str, zero: str | None = None, doubles: bool = True) -> str:
    zero = zero or rng.choice(["oh", "zero"])
    out, i = [], 0
    while i < len(s):
        d = s[i]
        run = 1
        while i + run < len(s) and s[i + run] == d:
            run += 1
        if doubles and run == 3 and rng.random() < 0.7:
            out.append("triple " + w(d, zero))
            i += 3
        elif doubles and run >= 2 and rng.random() < 0.7:
            out.append("double " + w(d, zero))
            i += 2
        else:
            out.append(w(d, zero))
            i += 1
    return " ".join(out)


def pair(s: str, zero: str = "oh") -> str:
    a, b = int(s[0]), int(s[1])
    if a == 0:
        return f"{zero} {w(s[1], zero)}"
    if a == 1:
        return TEENS[b]
    return TENS[a] if b == 0 else f"{TENS[a]} {UNITS[b]}"


def three(s: str) -> str:
    if s[0] == "0":
        return digitwise(s)
    if s[1:] == "00":
        return f"{UNITS[int(s[0])]} hundred"
    if rng.random() < 0.25 and s[1] != "0":
        return f"{UNITS[int(s[0])]} hundred {pair(s[1:])}"
    return f"{UNITS[int(s[0])]} {pair(s[1:])}"


def four(s: str) -> str:
    if s[0] == "0":
        return digitwise(s)
    if s[2:] == "00" and s[1] != "0" and s[0] != "0":
        return f"{pair(s[:2])} hundred"
    return f"{pair(s[:2])} {pair(s[2:])}" if s[1] != "0" or s[0] != "0" else digitwise(s)


def group_say(g: str, style: str) -> str:
    if style == "digit":
        return digitwise(g)
    if len(g) == 2:
        return pair(g)
    if len(g) == 3:
        return three(g)
    if len(g) == 4:
        return four(g)
    return digitwise(g)


def split_groups(s: str, sizes: list[int]) -> list[str]:
    out, i = [], 0
    for k in sizes:
        if i >= len(s):
            break
        out.append(s[i : i + k])
        i += k
    if i < len(s):
        out.append(s[i:])
    return out


def say(s: str, sizes: list[int] | None = None, style: str | None = None, filler: float = 0.0,
        sep: str | None = None) -> str:
    sizes = sizes or [4] * 5
    style = style or rng.choice(["digit", "digit", "mixed", "group"])
    sep = sep if sep is not None else rng.choice([", ", " ", " ", ". "])
    parts = []
    for g in split_groups(s, sizes):
        st = style if style != "mixed" else rng.choice(["digit", "group"])
        parts.append(group_say(g, st))
    out = parts[0]
    for p in parts[1:]:
        if filler and rng.random() < filler:
            out += sep + rng.choice(FILLERS) + " " + p
        else:
            out += sep + p
    return out


def wr(s: str, sizes: list[int] | None = None, sep: str = " ") -> str:
    return sep.join(split_groups(s, sizes or [4] * 5))


def spaced(s: str) -> str:
    return " ".join(s)


def card_sizes(n: str) -> list[int]:
    return [4, 6, 5] if len(n) == 15 else [4, 4, 4, 4]


def say_phone(p: str) -> str:
    a, e, l = p[:3], p[3:6], p[6:]
    mode = rng.choice(["digit", "digit", "mixed", "pairs"])
    if mode == "digit":
        return f"{digitwise(a)}, {digitwise(e)}, {digitwise(l)}"
    if mode == "mixed":
        return f"{digitwise(a)} {three(e)} {four(l)}"
    return f"{digitwise(a)} {digitwise(e)} {pair(l[:2])} {pair(l[2:])}"


def say_iban(ib: str) -> str:
    out = []
    for i in range(0, len(ib), 4):
        g = ib[i : i + 4]
        toks = [c if c.isalpha() else w(c, "zero") for c in g]
        out.append(" ".join(toks))
    return ", ".join(out)


# ---------------------------------------------------------------- row builder
rows: list[dict] = []


def ent_form(surface: str) -> str:
    toks = re.findall(r"[a-z]+", surface.lower())
    if any(t in NUMWORDS for t in toks) or (" at " in surface and " dot " in surface):
        return "spoken"
    return "written"


def U(domain: str, speaker: str, *parts, form: str | None = None) -> None:
    text, ents = "", []
    for p in parts:
        if isinstance(p, tuple):
            t, s = p
            st = len(text)
            text += s
            ents.append({"type": t, "start": st, "end": len(text), "form": ent_form(s)})
        else:
            text += p
    if form is None:
        if ents:
            form = "spoken" if any(e["form"] == "spoken" for e in ents) else "written"
        else:
            form = "spoken" if any(t in NUMWORDS for t in re.findall(r"[a-z]+", text.lower())) else "written"
    rows.append({"id": f"h2-{len(rows) + 1:03d}-{domain}-{speaker}", "form": form, "domain": domain,
                 "speaker": speaker, "text": text, "entities": ents})


def dob_spoken(y: int, m: int, d: int) -> str:
    yy = f"{y}"
    ys = f"{pair(yy[:2])} {pair(yy[2:])}" if y < 2000 else rng.choice(
        [f"two thousand {UNITS[y - 2000]}" if y < 2010 else f"twenty {pair(yy[2:])}", f"two thousand and {UNITS[y % 10]}" if y < 2010 else f"twenty {pair(yy[2:])}"])
    form = rng.choice(["md", "dm", "num"])
    if form == "md":
        return f"{MONTHS[m - 1]} {ORD[d]} {ys}"
    if form == "dm":
        return f"the {ORD[d]} of {MONTHS[m - 1]} {ys}"
    return f"{pair(f'{m:02d}')} {pair(f'{d:02d}')} {ys}"


def rdate() -> tuple[int, int, int]:
    return rng.randint(1938, 2012), rng.randint(1, 12), rng.randint(1, 28)


def expiry() -> tuple[int, int]:
    return rng.randint(1, 12), rng.randint(26, 31)


C = "CREDIT_CARD"
S = "US_SSN"
B = "US_BANK_NUMBER"
R = "ABA_ROUTING_NUMBER"
P = "PHONE_NUMBER"
E = "EMAIL_ADDRESS"
I = "IBAN_CODE"
V = "CARD_CVV"
X = "CARD_EXPIRY"
D = "DATE_OF_BIRTH"
M = "MEMBER_ID"

# ================================================================= POSITIVES
# ---- credit cards (banking) ----
for _ in range(3):
    n = card()
    U("bank", "caller", "yeah the card number is ", (C, say(n, card_sizes(n), filler=0.3)))
n = card("visa")
U("bank", "caller", "ok it's ", (C, f"{say(n[:8], [4, 4], 'digit')} um hang on let me flip it over {say(n[8:], [4, 4], 'group')}"),
  " that's the debit card")
n = card("mc")
U("bank", "caller", "card number ", (C, f"{say(n[:4], [4], 'group')} {say(n[4:8], [4], 'group')}, no wait, "
  + say(n, [4, 4, 4, 4], "group", sep=" ")), " sorry i started over")
n = card("visa")
U("bank", "agent", "okay so that's ", (C, spaced(n[:4]) + ", " + spaced(n[4:8]) + ", " + spaced(n[8:12]) + ", " + spaced(n[12:])),
  " is that correct")
n = card("amex")
n = card("amex")
cv = str(rng.randint(1000, 9999))
U("bank", "caller", "it's an amex ", (C, say(n, [4, 6, 5], "mixed", sep=", ")), " and the code on the front is ",
  (V, digitwise(cv)))
n = card()
n = card("visa")
U("bank", "caller", "my card number is ", (C, f"{wr(n[:8], [4, 4])}. and then the rest is {wr(n[8:], [4, 4])}"))
n = card("mc")
U("bank", "caller", (C, n), " is the card")
n = card("disc")
U("bank", "caller", "discover card ", (C, wr(n, [4, 4, 4, 4], "-")), " exp ", (X, f"{rng.randint(1, 12):02d}/{rng.randint(26, 30)}"))
n = card("visa")
U("bank", "caller", "i want to dispute a charge on ", (C, say(n, [4, 4, 4, 4], "group", sep=" ")))
n = card("mc")
U("bank", "agent", "just confirming the card ", (C, wr(n, [4, 4, 4, 4])), " was reported stolen today")
n = card("visa")
U("bank", "caller", "the number is ", (C, f"{say(n[:4], [4], 'digit')} uh {say(n[4:8], [4], 'digit')} {say(n[8:12], [4], 'digit')} um {say(n[12:], [4], 'digit')}"))
n = card("mc")
U("bank", "caller", "visa no sorry mastercard ", (C, say(n, [4, 4, 4, 4], "digit", sep=" ")))
n = card("visa")
U("bank", "caller", "sure its ", (C, wr(n, [4, 4, 4, 4])), " expires ", (X, f"{rng.randint(1, 12)}/{rng.randint(2026, 2030)}"),
  " and the cvv is ", (V, rdig(3)))
n = card("amex")
U("bank", "caller", "card is ", (C, wr(n, [4, 6, 5])), " security code ", (V, str(rng.randint(1000, 9999))))
n = card("visa")
n = card("visa")
U("bank", "caller", "i'll read it to you ", (C, f"{four(n[:4])}. {four(n[4:8])}. {four(n[8:12])}. {four(n[12:])}"), ". got that?")
n = card("mc")
U("bank", "caller", "card number ", (C, f"{three(n[:3])} {three(n[3:6])} {three(n[6:9])} {three(n[9:12])} {four(n[12:])}"))

# ---- CVV / expiry ----
for _ in range(3):
    cv = rdig(3)
    m, y = expiry()
    U("bank", "caller", rng.choice(["the three digits on the back are ", "security code is ", "cvv "]),
      (V, digitwise(cv)), rng.choice([" and it expires ", ", expiration ", " exp date "]),
      (X, f"{pair(f'{m:02d}')} {pair(str(y))}"))
m, y = expiry()
U("bank", "caller", "expiry is ", (X, f"{MONTHS[m - 1]} twenty {pair(str(y))}"))
m, y = expiry()
U("bank", "caller", "it says valid thru ", (X, f"{m:02d}/{y}"))
cv = rdig(3)
U("bank", "caller", (V, digitwise(cv)), " that's the security code on the back")
cv = rdig(3)
U("bank", "agent", "and the cvv you gave me was ", (V, " ".join(cv)))
m, y = expiry()
U("bank", "caller", "expiration date ", (X, f"{m} {2000 + y}"), " i think")
m, y = expiry()
U("bank", "caller", "it expires end of ", (X, f"{MONTHS[m - 1]} {2000 + y}"))
cv = rdig(3)
U("bank", "caller", "uh the numbers on the back uh ", (V, f"{w(cv[0])} {w(cv[1])} um {w(cv[2])}"))
m, y = expiry()
m, y = rng.randint(1, 9), rng.randint(26, 30)
m, y = rng.randint(1, 9), rng.randint(26, 30)
U("bank", "caller", "expiration is ", (X, f"oh {UNITS[m]} slash {pair(str(y))}"))

# ---- SSN ----
for _ in range(3):
    s = ssn()
    U("bank", "caller", rng.choice(["my social is ", "social security number ", "ssn is "]),
      (S, say(s, [3, 2, 4], filler=0.3)))
s = ssn()
U("bank", "caller", "social ", (S, f"{s[:3]}-{s[3:5]}-{s[5:]}"))
s = ssn()
U("bank", "caller", "my social security number is ", (S, f"{s[:3]} {s[3:5]} {s[5:]}"))
s = ssn()
U("bank", "caller", (S, say(s, [3, 2, 4], "digit", sep=" ")), " is my social")
s = ssn()
U("insurance", "caller", "the social on the policy is ", (S, f"{digitwise(s[:3])} {pair(s[3:5])} {four(s[5:])}"))
s = ssn()
U("bank", "caller", "ssn ", (S, f"{s[:3]}{s[3:5]}{s[5:]}"))
s = ssn()
s = ssn()
U("bank", "caller", "social is ", (S, f"{digitwise(s[:3])} {digitwise(s[3:5])}, sorry, {digitwise(s[5:])}"))
s = ssn()
U("bank", "agent", "let me read that back, social security ", (S, f"{' '.join(s[:3])} {' '.join(s[3:5])} {' '.join(s[5:])}"), " correct?")
s = ssn()
U("clinic", "caller", "her social is ", (S, say(s, [3, 2, 4], "digit", sep=", ")), " she's the policy holder")

# ---- bank accounts / routing ----
for _ in range(3):
    a = acct()
    U("bank", "caller", rng.choice(["checking account number ", "my account number is ", "account "]),
      (B, say(a, [4, 4, 4], filler=0.2)))
a = acct(10)
U("bank", "caller", "account number ", (B, wr(a, [10])))
a = acct(12)
U("bank", "caller", "the savings account is ", (B, wr(a, [4, 4, 4])))
a = acct(9)
U("bank", "caller", (B, a), " that's my checking account")
a = acct(10)
U("bank", "caller", "my account number is ", (B, say(a, [4, 4, 2], 'digit')), ", actually sorry that's the old one, it's ",
  (B, say(acct(10), [3, 3, 4], "digit", sep=" ")))
a = acct(12)
U("bank", "caller", "the account number is ", (B, f"{wr(a[:6], [3, 3])}. and then {wr(a[6:], [3, 3])}"))
r = aba()
a = acct(10)
U("bank", "caller", "routing ", (R, say(r, [3, 3, 3], "digit")), " account ", (B, say(a, [3, 3, 4], "digit")))
r = aba()
U("bank", "caller", "the routing number is ", (R, r))
r = aba()
U("bank", "caller", "aba ", (R, wr(r, [3, 3, 3])), " for the direct deposit")
r = aba()
U("bank", "agent", "so routing number ", (R, spaced(r)), " and account ending in 4471 right",)
r = aba()
a = acct(8)
U("bank", "caller", "for the wire the routing is ", (R, f"{digitwise(r[:4])} um {digitwise(r[4:])}"),
  " and the account is ", (B, f"{pair(a[:2])} {pair(a[2:4])} {pair(a[4:6])} {pair(a[6:])}"))
a = acct(10)
U("bank", "caller", "yeah it's ", (B, say(a, [2, 2, 2, 2, 2], "group", sep=" ")), " my account number")

# ---- IBAN ----
ib = iban("GB")
U("bank", "caller", "the iban is ", (I, ib))
ib = iban("DE")
U("bank", "caller", "iban ", (I, " ".join(ib[i : i + 4] for i in range(0, len(ib), 4))))
ib = iban("NL")
U("bank", "caller", "the iban for my daughter in amsterdam is ", (I, say_iban(ib)))
ib = iban("IE")
U("bank", "caller", "it's ", (I, say_iban(ib)), " that's the iban")
ib = iban("GB")
U("bank", "agent", "I have the IBAN as ", (I, " ".join(ib[i : i + 4] for i in range(0, len(ib), 4))), ", is that right")

# ---- phone numbers ----
for _ in range(4):
    p = phone()
    U(rng.choice(["bank", "insurance", "clinic"]), "caller",
      rng.choice(["you can reach me at ", "my cell is ", "best number is ", "call me back on "]), (P, say_phone(p)))
p = phone()
U("clinic", "caller", "my number is ", (P, f"({p[:3]}) {p[3:6]}-{p[6:]}"))
p = phone()
U("clinic", "caller", "phone ", (P, f"{p[:3]}.{p[3:6]}.{p[6:]}"))
p = phone()
p = phone()
U("insurance", "caller", "area code ", (P, f"{digitwise(p[:3])}, then {digitwise(p[3:6])}, {digitwise(p[6:])}"))
p = phone()
U("clinic", "agent", "so that's ", (P, f"{' '.join(p[:3])} {' '.join(p[3:6])} {' '.join(p[6:])}"), ", and is it ok to leave a message")
p = phone()
U("insurance", "caller", "call my husband on ", (P, f"1 {p[:3]} {p[3:6]} {p[6:]}"))
p = phone()
p = phone()
p = phone()
U("bank", "caller", "the number on file should be ", (P, f"{p[:3]}{p[3:6]}{p[6:]}"))
p = phone()
U("clinic", "caller", "you can text me ", (P, f"{digitwise(p[:3])} {digitwise(p[3:6])} uh {pair(p[6:8])} {pair(p[8:])}"))
p = phone()
U("clinic", "caller", "my daughter's number. ", (P, f"{p[:3]} {p[3:6]}. {p[6:]}"))

# ---- email ----
U("bank", "caller", "my email is ", (E, "maria.kowalczyk84@gmail.com"))
U("bank", "caller", "email ", (E, "d dot okafor at outlook dot com"))
U("insurance", "caller", "send the form to ", (E, "jpetersen seventy one at yahoo dot com"))
U("clinic", "caller", "it's ", (E, "lindsay dot h dot moore at protonmail dot com"), " all lower case")
U("clinic", "agent", "I have your email as ", (E, "r.vasquez@comcast.net"), ", is that still good?")
U("insurance", "caller", "my email address is ", (E, "tom underscore brennan at hotmail dot co dot uk"))
U("bank", "caller", "you can email me at ", (E, "samir.h.patel@icloud.com"))
U("clinic", "caller", "email is ", (E, "grandma dot jo at aol dot com"), " that's my mom's")
U("insurance", "caller", "my work email ", (E, "kfischer at brightline dash logistics dot com"))
U("bank", "caller", (E, "nguyen.thao1990@yahoo.com"), " is my email")

# ---- date of birth ----
for _ in range(4):
    y, m, d = rdate()
    U(rng.choice(["clinic", "insurance", "bank"]), "caller",
      rng.choice(["date of birth ", "my date of birth is ", "dob is ", "i was born "]), (D, dob_spoken(y, m, d)))
y, m, d = rdate()
U("clinic", "caller", "dob ", (D, f"{m:02d}/{d:02d}/{y}"))
y, m, d = rdate()
U("clinic", "caller", "her birthday is ", (D, f"{MONTHS[m - 1]} {d} {y}"))
y, m, d = rdate()
U("clinic", "caller", (D, dob_spoken(y, m, d)), " that's my date of birth")
y, m, d = rdate()
U("insurance", "caller", "born ", (D, f"{y}-{m:02d}-{d:02d}"))
y, m, d = rdate()
U("clinic", "caller", "it's for my son he was born ", (D, f"{MONTHS[3]} ninth twenty fifteen"))
y, m, d = rdate()
y, m, d = rdate()
U("clinic", "caller", "date of birth is ", (D, f"{pair(f'{m:02d}')} {pair(f'{d:02d}')} uh {pair(str(y)[:2])} {pair(str(y)[2:])}"))
U("clinic", "agent", "i have the date of birth as ", (D, "seven twelve nineteen fifty two"), " is that right")
y, m, d = rdate()
U("insurance", "caller", "the driver's date of birth ", (D, f"{d} {MONTHS[m - 1]} {y}"))

# ---- member / policy / patient ids (MEMBER_ID) ----
U("insurance", "caller", "my policy number is ", (M, "A U T eight eight two oh one seven four six"))
U("insurance", "caller", "policy number ", (M, f"{rdig(3)} {rdig(3)} {rdig(4)}".replace("0", "7", 1)))
U("insurance", "caller", "the policy number is ", (M, say("7" + rdig(9), [3, 3, 4], "digit")))
U("insurance", "caller", "member id ", (M, "XJH 449 210 773"))
U("clinic", "caller", "my member id is ", (M, "W " + digitwise("2" + rdig(8))), " it's on the insurance card")
U("clinic", "caller", "subscriber id ", (M, "ZGP" + rdig(9)))
U("clinic", "agent", "i pulled up the chart, mrn ", (M, "00" + str(rng.randint(100000, 999999))))
U("clinic", "caller", "the patient id on the letter is ", (M, say(str(rng.randint(1000000, 9999999)), [3, 4], "mixed")))
U("insurance", "caller", "yes the policy is ", (M, f"{four(str(rng.randint(1000, 9999)))} {four(str(rng.randint(1000, 9999)))}"),
  " uh that's the auto policy")
U("insurance", "agent", "okay i have policy number ", (M, "PL-" + rdig(8)), " under your name")
U("bank", "caller", "my customer number is ", (M, rdig(8).replace("0", "3", 1)))
U("insurance", "caller", (M, "H O M " + digitwise(rdig(7))), " that's my homeowners policy number")
U("clinic", "caller", "medical record number ", (M, rdig(7)))
U("insurance", "caller", "member number ", (M, f"{digitwise(rdig(4))} um {digitwise(rdig(5))}"))
U("clinic", "caller", "her medicaid id is ", (M, rng.choice(["YK", "QM"]) + rdig(8)))
U("insurance", "caller", "policy number uh ", (M, "four four seven, oh nine, two two one six"))

# ---- mixed multi-entity turns ----
n = card("visa")
m, y = expiry()
cv = rdig(3)
U("bank", "caller", "ok card number ", (C, say(n, [4, 4, 4, 4], "mixed", sep=", ")), " expiration ",
  (X, f"{pair(f'{m:02d}')} {pair(str(y))}"), " and the security code ", (V, digitwise(cv)))
y, mo, d = rdate()
U("clinic", "caller", "patient is my dad, date of birth ", (D, f"{mo}/{d}/{y}"), ", member id ", (M, "MCR" + rdig(9)))
p = phone()
U("insurance", "caller", "policy number ", (M, "AU" + rdig(8)), " and my phone is ", (P, say_phone(p)))
s = ssn()
y, m, d = rdate()
U("bank", "caller", "social ", (S, f"{s[:3]} {s[3:5]} {s[5:]}"), " date of birth ", (D, f"{m}/{d}/{str(y)[2:]}"))
r = aba()
a = acct(11)
U("bank", "caller", "routing number ", (R, r), " checking ", (B, a))
U("clinic", "caller", "my email is ", (E, "aisha dot rahman at gmail dot com"), " and cell ",
  (P, say_phone(phone())))


# ---- more: asides, readbacks, corrections, groups of 3 ----
p = phone()
U("insurance", "caller", "my cell is ", (P, f"{digitwise(p[:3])} uh hold on the kids are yelling {digitwise(p[3:6])} {digitwise(p[6:])}"))
p = phone()
U("clinic", "agent", "okay let me read that back ", (P, f"{p[:3]} {p[3:6]} {p[6:]}"), " and that's a mobile?")
p = phone()
U("bank", "caller", "my phone number is ", (P, f"{digitwise(p[:3])} {digitwise(p[3:6])}. {digitwise(p[6:])}"), ". that's a cell")
a = acct(12)
U("bank", "caller", "checking account ", (B, f"{wr(a[:4], [4])} {wr(a[4:8], [4])} uh let me find my glasses {wr(a[8:], [4])}"))
a = acct(10)
U("bank", "agent", "so the account number i have is ", (B, spaced(a)), " and you want to close it today")
n = card("mc")
U("bank", "agent", "i'm reading back the card number ", (C, f"{say(n[:4], [4], 'digit')}, {say(n[4:8], [4], 'digit')}, {say(n[8:12], [4], 'digit')}, {say(n[12:], [4], 'digit')}"), " correct")
n = card("visa")
U("bank", "caller", "card number is ", (C, wr(n, [3, 3, 3, 3, 4])))
n = card("disc")
U("bank", "caller", "so it's ", (C, f"{say(n[:4], [4], 'digit')} {say(n[4:8], [4], 'digit')} {say(n[8:11], [3], 'digit')} no {say(n[8:12], [4], 'digit')} {say(n[12:], [4], 'digit')}"))
s = ssn()
U("insurance", "caller", "sure it's ", (S, f"{digitwise(s[:3])} {digitwise(s[3:5])} {digitwise(s[5:])}"), " that's my social security number")
s = ssn()
U("clinic", "caller", "for the billing my ss number is ", (S, f"{s[:3]}-{s[3:5]}-{s[5:]}"))
y, m, d = rdate()
U("clinic", "caller", "i was born on ", (D, f"{MONTHS[m - 1]} {ORD[d]}. {pair(str(y)[:2])} {pair(str(y)[2:])}"))
y, m, d = rdate()
U("insurance", "agent", "i show a date of birth of ", (D, f"{m:02d} {d:02d} {y}"), " for the primary insured")
U("insurance", "caller", "the policy number is ", (M, "C A " + say(rdig(8), [4, 4], "digit")), " no sorry that's the old policy")
U("insurance", "caller", "member id uh ", (M, "K " + digitwise(rdig(3)) + " " + digitwise(rdig(3)) + " " + digitwise(rdig(3))))
U("clinic", "caller", "my patient number is ", (M, four(str(rng.randint(1000, 9999))) + " " + four(str(rng.randint(1000, 9999)))))
cv = rdig(3)
U("bank", "caller", "the cvc is ", (V, three(str(rng.randint(100, 999)))))
m, y = expiry()
U("bank", "caller", "and it expires ", (X, f"{MONTHS[m - 1]} of twenty {pair(str(y))}"))
ib = iban("GB")
ib = iban("DE")
U("bank", "caller", "the iban is ", (I, f"D E {' '.join(w(c, 'zero') for c in ib[2:4])}, " + ", ".join(" ".join(w(c, "zero") for c in ib[i:i + 4]) for i in range(4, len(ib), 4))))
U("clinic", "caller", "the email is ", (E, "wells dot marcus seventy seven at gmail dot com"), " w e l l s")

# ================================================================= NEGATIVES
neg = []
NEG_TEXTS = [
    # banking
    ("bank", "caller", "the card ending in {l4} was declined at the gas station"),
    ("bank", "agent", "i see a charge of four fifty one twenty from amazon on the fourteenth"),
    ("bank", "caller", "i was charged $1,249.99 twice"),
    ("bank", "agent", "your balance is two thousand four hundred and twelve dollars and sixteen cents"),
    ("bank", "caller", "the last four of my social are {l4s}"),
    ("bank", "caller", "it's the account ending {l4}"),
    ("bank", "agent", "your reference number for today's call is {ref}"),
    ("bank", "caller", "the transaction was for 83 dollars at 4:15 pm"),
    ("bank", "agent", "the interest rate is four point two five percent"),
    ("bank", "agent", "the apr on that card is 24.99%"),
    ("bank", "caller", "i moved in 2019 to zip code {zip}"),
    ("bank", "agent", "please hold, i'm transferring you to extension {ext}"),
    ("bank", "caller", "my zip is {zipw}"),
    ("bank", "caller", "order number {order} from best buy shows as pending"),
    ("bank", "agent", "the dispute ticket is {ticket}"),
    ("bank", "caller", "i need to send three thousand five hundred dollars to my landlord"),
    ("bank", "caller", "the check number was {checkno}"),
    ("bank", "agent", "we're open nine to five monday through friday"),
    ("bank", "caller", "i withdrew four hundred at the atm on main street around seven thirty"),
    ("bank", "agent", "your confirmation number is {conf}"),
    ("bank", "caller", "the one ending in {l4w} not the other one"),
    ("bank", "agent", "the new card should arrive in seven to ten business days"),
    ("bank", "caller", "my mortgage payment is nineteen eighty five a month"),
    ("bank", "caller", "i paid twelve fifty for the fee in march 2023"),
    ("bank", "agent", "that transfer of $15,000 will post on 11/14"),
    ("bank", "caller", "it was like 2 or 3 weeks ago maybe the 21st"),
    ("bank", "agent", "press 1 for english press 2 for spanish"),
    ("bank", "caller", "the branch at 4410 oak street"),
    ("bank", "caller", "it says error code {errc} on the app"),
    ("bank", "agent", "the wire fee is twenty five dollars and the cutoff is three pm eastern"),
    ("bank", "caller", "i think the tracking number on the card mailer was {track}"),
    ("bank", "caller", "the atm kept my card, the one ending {l4w2}"),
    ("bank", "agent", "your case id is {case}"),
    ("bank", "caller", "i'm 67 years old and i've banked here since 1981"),
    # insurance
    ("insurance", "caller", "the claim number is {claim}"),
    ("insurance", "caller", "claim {claimw}"),
    ("insurance", "agent", "your deductible is five hundred dollars and you've met three twenty of it"),
    ("insurance", "caller", "the accident was on june third around six fifteen in the evening"),
    ("insurance", "caller", "it's a 2017 honda civic with about ninety two thousand miles"),
    ("insurance", "agent", "the estimate came back at four thousand three hundred and eighty dollars"),
    ("insurance", "caller", "the tow truck was invoice number {inv}"),
    ("insurance", "agent", "we cover eighty percent after the deductible"),
    ("insurance", "caller", "i was going about thirty five miles an hour"),
    ("insurance", "agent", "your premium goes up to one forty two a month starting in january"),
    ("insurance", "caller", "the police report number is {ref}"),
    ("insurance", "caller", "it happened at the corner of 5th and 42nd"),
    ("insurance", "agent", "the adjuster will call you between nine and eleven tomorrow"),
    ("insurance", "caller", "the house was built in nineteen sixty two"),
    ("insurance", "caller", "the roof is about 2,400 square feet"),
    ("insurance", "agent", "claim reference {claim2} has been assigned to an adjuster"),
    ("insurance", "caller", "the rental is thirty nine ninety nine a day"),
    ("insurance", "caller", "the other driver's plate was 7 K X 4 4 1 9"),
    ("insurance", "agent", "you'll get a letter within 30 days"),
    ("insurance", "caller", "the hail storm was on april 22 2024"),
    ("insurance", "agent", "your coverage limit is a hundred thousand per person three hundred thousand per accident"),
    ("insurance", "caller", "they quoted me sixteen hundred for the bumper"),
    ("insurance", "caller", "the ticket they gave me was {ticket2}"),
    ("insurance", "agent", "that's under section 4 point 2 of the policy booklet"),
    # clinic
    ("clinic", "agent", "take 250 milligrams twice a day with food"),
    ("clinic", "agent", "take two fifty milligrams twice a day for ten days"),
    ("clinic", "caller", "she's in room 412 on the fourth floor"),
    ("clinic", "caller", "my mom is in ward 7b bed 14"),
    ("clinic", "agent", "your appointment is on march fourteenth at two thirty"),
    ("clinic", "agent", "we have an opening on 11/18 at 9:45 am"),
    ("clinic", "caller", "can i move it to tuesday the twenty second"),
    ("clinic", "agent", "please arrive fifteen minutes early"),
    ("clinic", "caller", "i take 10 mg of lisinopril and 500 mg of metformin"),
    ("clinic", "caller", "my blood pressure was one forty over ninety"),
    ("clinic", "agent", "the copay is thirty five dollars"),
    ("clinic", "caller", "i'm 34 weeks pregnant"),
    ("clinic", "agent", "dr. patel is in suite 2100 at 1450 elm avenue"),
    ("clinic", "caller", "the fax number on the referral is {badph}"),
    ("clinic", "agent", "you can reach the nurse line at extension {ext2}"),
    ("clinic", "caller", "my temperature was a hundred and one point four last night"),
    ("clinic", "caller", "he weighs about one sixty five"),
    ("clinic", "agent", "the lab order number is {order2}"),
    ("clinic", "caller", "i had the surgery back in 2015 and a follow up in 2016"),
    ("clinic", "agent", "the pharmacy closes at 9 pm on weekdays"),
    ("clinic", "caller", "i need a refill of the 40 milligram atorvastatin ninety day supply"),
    ("clinic", "agent", "your visit is confirmed for october 3rd 2025 at 10 15"),
    ("clinic", "caller", "the insulin is 12 units at night"),
    ("clinic", "agent", "we're located at 233 north broad street zip {zip2}"),
    ("clinic", "caller", "my a1c was six point eight percent"),
    ("clinic", "caller", "she's 3 years old and she weighs 32 pounds"),
    ("clinic", "agent", "your ticket number in the queue is {qticket}"),
    ("clinic", "caller", "i called on the 9th and the 12th and nobody called back"),
    ("clinic", "agent", "the ct scan is scheduled for 7 am on december 2nd"),
    ("clinic", "caller", "the serial number on my glucose meter is {badph2}"),
    ("clinic", "caller", "uh the reference on the bill is {refw}"),
    ("clinic", "agent", "the total after insurance is one hundred twenty seven dollars and fifty cents"),
    ("clinic", "caller", "parking garage level 3 spot 118"),
    ("clinic", "caller", "oh i see, okay, one moment please"),
    ("clinic", "agent", "dial nine then the room number 3 1 7 to reach the patient"),
    ("insurance", "caller", "the policy renews on the first of august"),
    ("bank", "caller", "can you send the statement for 2022 and 2023"),
]

fills = {
    "l4": lambda: rdig(4), "l4w": lambda: digitwise(rdig(4)), "l4w2": lambda: four(str(rng.randint(1000, 9999))),
    "l4s": lambda: digitwise(rdig(4)),
    "ref": lambda: rng.choice(["R", "REF"]) + rdig(7), "zip": lambda: rdig(5).replace("0", "1"),
    "zipw": lambda: digitwise(str(rng.randint(10000, 99999))),
    "ext": lambda: str(rng.randint(2000, 7999)), "ext2": lambda: four(str(rng.randint(2000, 7999))),
    "order": lambda: rdig(3) + "-" + rdig(7) + "-" + rdig(7), "ticket": lambda: "T-" + rdig(6),
    "checkno": lambda: str(rng.randint(1000, 1999)), "conf": lambda: rdig(10),
    "errc": lambda: str(rng.randint(400, 599)), "track": lambda: "1Z" + rdig(16),
    "case": lambda: digitwise(rdig(8)), "claim": lambda: rdig(4) + " " + rdig(3) + " " + rdig(4),
    "claimw": lambda: say(rdig(10), [3, 3, 4], "digit"), "inv": lambda: rdig(6),
    "claim2": lambda: "CLM-" + rdig(9), "ticket2": lambda: rdig(9), "badph": lambda: wr(bad_phone(), [3, 3, 4], "-"),
    "order2": lambda: rdig(8), "zip2": lambda: str(rng.randint(10000, 99999)),
    "qticket": lambda: three(str(rng.randint(100, 999))), "badph2": lambda: wr(bad_phone(), [10]),
    "refw": lambda: say(rdig(8), [4, 4], "digit"),
}
for dom, spk, t in NEG_TEXTS:
    for k, f in fills.items():
        if "{" + k + "}" in t:
            t = t.replace("{" + k + "}", f())
    U(dom, spk, t)

# a few more spoken negatives in ASR style
U("bank", "caller", "yeah so i got charged like uh three ninety nine a month for something i never signed up for")
U("bank", "caller", "um i sent six hundred and fifty on the second and it still hasn't shown up")
U("insurance", "caller", "the car's a two thousand nineteen with maybe forty thousand on it")
U("clinic", "caller", "the doctor said take one tablet three times a day for fourteen days")
U("clinic", "caller", "my appointment was at eleven forty five and i waited till one fifteen")
U("bank", "agent", "okay and that was on the twenty third of last month for seventy two dollars")
U("insurance", "caller", "claim number is " + say(rdig(9), [3, 3, 3], "digit") + " i got it from the email")
U("clinic", "caller", "we're at room two oh four")
U("bank", "caller", "the order number is " + say(rdig(10), [3, 3, 4], "digit"))
U("bank", "caller", "i'm calling about ticket " + " ".join(rdig(7)))
U("clinic", "caller", "call me between nine and five")
U("insurance", "agent", "that would be extension " + digitwise(str(rng.randint(2000, 7999))) + " for the claims department")
U("bank", "caller", "the card ending in " + digitwise(rdig(4)) + " yeah that one")
U("bank", "caller", "the security question answer is fluffy")
U("clinic", "caller", "ninety percent sure the appointment was on the fifth")

out = Path(__file__).resolve().parent / "pii_heldout2.jsonl"
with open(out, "w", encoding="utf-8") as f:
    for r in rows:
        for e in r["entities"]:
            assert r["text"][e["start"] : e["end"]].strip() == r["text"][e["start"] : e["end"]], (r["text"], e)
        f.write(json.dumps(r) + "\n")
n_neg = sum(1 for r in rows if not r["entities"])
print(f"{len(rows)} utterances, {sum(len(r['entities']) for r in rows)} entities, {n_neg} negatives "
      f"({n_neg / len(rows):.0%})")
