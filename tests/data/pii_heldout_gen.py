"""Held-out PII evaluation set, written independently of the detector (not read).

    .venv/bin/python tests/data/pii_heldout_gen.py   # writes tests/data/pii_heldout.jsonl

Utterances are hand-written templates in the style of phone-call ASR output with
``[[TYPE|surface]]`` markup; the identifiers are random per run with a fixed seed and carry
valid checksums (Luhn, SSA rules, ABA, IBAN mod-97).  Labeling policy (docs/pii.md):
partial numbers ("card ending in 4821", "last four of my social") are NOT labeled; order,
ticket, confirmation, claim, tracking numbers, amounts, times, non-birth dates, years,
quantities and percentages are negatives.  When a caller abandons a partial number and
restarts, only the full number is labeled.  A number split by filler words is one span.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

SEED = 20240611
rng = random.Random(SEED)
OUT = Path(__file__).resolve().parent / "pii_heldout.jsonl"

ONES = "zero one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}
MONTHS = "january february march april may june july august september october november december".split()
ORD = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh", 8: "eighth",
       9: "ninth", 10: "tenth", 11: "eleventh", 12: "twelfth", 13: "thirteenth", 14: "fourteenth",
       15: "fifteenth", 16: "sixteenth", 17: "seventeenth", 18: "eighteenth", 19: "nineteenth", 20: "twentieth",
       21: "twenty first", 22: "twenty second", 23: "twenty third", 24: "twenty fourth", 25: "twenty fifth",
       26: "twenty sixth", 27: "twenty seventh", 28: "twenty eighth"}


# ---------------------------------------------------------------- checksums / values
def luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    for c in "0123456789":
        if luhn_ok(body + c):
            return body + c
    raise AssertionError


def luhn_ok(s: str) -> bool:
    tot = 0
    for i, ch in enumerate(reversed(s)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        tot += d
    return tot % 10 == 0


def card(kind: str | None = None) -> str:
    kind = kind or rng.choice(["visa", "visa", "mc", "mc2", "amex", "disc"])
    if kind == "visa":
        return luhn_complete("4" + str(rng.randint(0, 9)), 16)
    if kind == "mc":
        return luhn_complete(str(rng.randint(51, 55)), 16)
    if kind == "mc2":
        return luhn_complete(str(rng.randint(2221, 2720)), 16)
    if kind == "amex":
        return luhn_complete(rng.choice(["34", "37"]), 15)
    return luhn_complete("6011", 16)


def ssn() -> str:
    while True:
        a = rng.randint(1, 899)
        if a != 666:
            break
    return f"{a:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def aba() -> str:
    while True:
        d = [rng.choice([0, 1, 2, 3])] + [rng.randint(0, 9) for _ in range(7)]
        pre = int(f"{d[0]}{d[1]}")
        if not (1 <= pre <= 12 or 21 <= pre <= 32):
            continue
        for c in range(10):
            x = d + [c]
            if (3 * (x[0] + x[3] + x[6]) + 7 * (x[1] + x[4] + x[7]) + (x[2] + x[5] + x[8])) % 10 == 0:
                return "".join(map(str, x))


def iban(country: str) -> str:
    if country == "GB":
        bban = rng.choice(["NWBK", "BARC", "LOYD", "MIDL"]) + "".join(str(rng.randint(0, 9)) for _ in range(14))
    else:  # DE
        bban = "".join(str(rng.randint(0, 9)) for _ in range(18))
    rearr = bban + country + "00"
    num = int("".join(str(int(ch, 36)) for ch in rearr))
    check = 98 - num % 97
    return f"{country}{check:02d}{bban}"


AREA = ["212", "415", "617", "312", "646", "773", "206", "503", "713", "404", "305", "602", "919", "720", "215"]


def phone() -> str:
    while True:
        ex = str(rng.randint(2, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(2))
        if ex[1:] != "11" and ex != "555":
            return rng.choice(AREA) + ex + "".join(str(rng.randint(0, 9)) for _ in range(4))


def digits(n: int, first_nonzero: bool = True) -> str:
    s = "".join(str(rng.randint(0, 9)) for _ in range(n))
    if first_nonzero and s[0] == "0":
        s = str(rng.randint(1, 9)) + s[1:]
    return s


# ---------------------------------------------------------------- speaking
def say_digit(d: str, zero: str) -> str:
    return zero if d == "0" else ONES[int(d)]


def say_group(g: str, zero: str | None = None, doubles: bool = True) -> str:
    zero = zero or rng.choice(["oh", "zero", "oh"])
    out, i = [], 0
    while i < len(g):
        if doubles and i + 2 < len(g) and g[i] == g[i + 1] == g[i + 2] and rng.random() < 0.6:
            out.append("triple " + say_digit(g[i], zero))
            i += 3
        elif doubles and i + 1 < len(g) and g[i] == g[i + 1] and rng.random() < 0.6:
            out.append("double " + say_digit(g[i], zero))
            i += 2
        else:
            out.append(say_digit(g[i], zero))
            i += 1
    return " ".join(out)


def say_pair(p: str) -> str:
    """Two digits as a speaker reads them in pairs: 45 -> forty five, 07 -> oh seven."""
    a, b = int(p[0]), int(p[1])
    if a == 0:
        return "oh " + ONES[b] if b else "oh oh"
    if a == 1:
        return TEENS[b]
    return TENS[a] + ("" if b == 0 else " " + ONES[b])


def say_pairs(g: str) -> str:
    return " ".join(say_pair(g[i:i + 2]) for i in range(0, len(g), 2))


def say(number: str, groups: list[int], sep: str | None = None, pairs_last: bool = False) -> str:
    parts, i = [], 0
    for k in groups:
        parts.append(number[i:i + k])
        i += k
    assert i == len(number), (number, groups)
    sep = sep if sep is not None else rng.choice([", ", " ", ", ", " "])
    said = [say_group(p) for p in parts]
    if pairs_last and len(parts[-1]) % 2 == 0:
        said[-1] = say_pairs(parts[-1])
    return sep.join(said)


def say_year(y: int) -> str:
    if 2000 <= y < 2010:
        return "two thousand" + ("" if y == 2000 else " " + ONES[y - 2000])
    return say_pair(str(y)[:2]) + " " + say_pair(str(y)[2:])


def grp(s: str, groups: list[int], sep: str = " ") -> str:
    parts, i = [], 0
    for k in groups:
        parts.append(s[i:i + k])
        i += k
    assert i == len(s)
    return sep.join(parts)


def fmt_money() -> str:
    return f"${rng.randint(1, 40)},{rng.randint(0, 999):03d}.{rng.randint(0, 99):02d}"


# ---------------------------------------------------------------- rows
ROWS: list[dict] = []
MARK = re.compile(r"\[\[([A-Z_]+)\|(.+?)\]\]")


def add(form: str, marked: str, kind: str) -> None:
    ents, last = [], 0
    out = ""
    for m in MARK.finditer(marked):
        out += marked[last:m.start()]
        start = len(out)
        out += m.group(2)
        ents.append({"type": m.group(1), "start": start, "end": len(out), "form": form})
        last = m.end()
    out += marked[last:]
    assert "[[" not in out and "]]" not in out, marked
    ROWS.append({"id": f"heldout-{kind}-{len(ROWS):03d}", "form": form, "text": out, "entities": ents})


def P(form, marked):
    add(form, marked, "pos")


def N(form, text):
    assert "[[" not in text
    add(form, text, "neg")


# ================================================================= CREDIT_CARD
c = card("visa"); P("written", f"yeah my card number is [[CREDIT_CARD|{grp(c, [4, 2, 4, 6])}]]")
c = card("visa"); P("written", f"um my card number is [[CREDIT_CARD|{grp(c[:8], [4, 4])}, hang on, {grp(c[8:], [4, 4])}]]")
c = card("mc"); P("written", f"[[CREDIT_CARD|{c}]] that's the mastercard")
c = card("mc"); P("written", f"the card is [[CREDIT_CARD|{grp(c, [4, 4, 4, 4], '-')}]] and uh the name on it is my wife's")
c = card("amex"); P("written", f"amex number [[CREDIT_CARD|{grp(c, [4, 6, 5])}]]")
c = card("disc"); P("written", f"ok so the discover card [[CREDIT_CARD|{grp(c, [4, 4, 4, 4])}]] got declined at the pharmacy")
c = card("mc2"); P("written", f"Card number: [[CREDIT_CARD|{grp(c, [4, 4, 4, 4])}]]")
c = card("visa"); P("written", f"I'm gonna read you the card it's [[CREDIT_CARD|{grp(c, [3, 3, 3, 3, 4])}]] did you get that")
c = card("visa"); P("written", f"the number on the front is [[CREDIT_CARD|{grp(c, [8, 8])}]]")
c = card("mc"); P("written", f"so I want to pay with [[CREDIT_CARD|{grp(c, [4, 4, 4, 4])}]] please")
c = card("visa"); P("written", f"it's [[CREDIT_CARD|{grp(c[:12], [4, 4, 4])} uh {c[12:]}]]")
c = card("visa"); c2 = card("visa")
P("written", f"my debit card is {c2[:4]} {c2[4:8]} sorry wrong card it's [[CREDIT_CARD|{grp(c, [4, 4, 4, 4])}]]")
c = card("amex"); P("written", f"[[CREDIT_CARD|{grp(c, [4, 6, 5], '-')}]] is the card on file I think")
c = card("mc"); P("written", f"Agent: I have the card as [[CREDIT_CARD|{grp(c, [4, 4, 4, 4])}]], is that correct?")
c = card("visa"); P("written", f"can you charge [[CREDIT_CARD|{c}]] for the copay")
c = card("disc"); P("written", f"the new card they mailed me is [[CREDIT_CARD|{grp(c, [4, 4, 4, 4])}]] can you activate it")

c = card("visa"); P("spoken", f"my card number is [[CREDIT_CARD|{say(c, [4, 4, 4, 4])}]]")
c = card("visa"); P("spoken", f"yeah it's [[CREDIT_CARD|{say(c, [4, 4, 4, 4], ', ')}]]")
c = card("mc"); P("spoken", f"um [[CREDIT_CARD|{say(c[:8], [4, 4])}, uh, {say(c[8:], [4, 4])}]] that's the mastercard")
c = card("visa"); P("spoken", f"the card is [[CREDIT_CARD|{say(c[:8], [4, 4])}, hang on let me grab my glasses, {say(c[8:], [4, 4])}]]")
c = card("amex"); P("spoken", f"it's an american express [[CREDIT_CARD|{say(c, [4, 6, 5])}]]")
c = card("disc"); P("spoken", f"card number [[CREDIT_CARD|{say(c, [4, 4, 4, 4], ' ', pairs_last=True)}]]")
c = card("mc2"); P("spoken", f"ok the number is [[CREDIT_CARD|{say(c, [4, 4, 4, 4])}]] and it's under my name")
c = card("visa"); P("spoken", f"[[CREDIT_CARD|{say(c, [4, 4, 4, 4])}]] that's my visa")
c = card("mc"); P("spoken",
                  f"I wanna pay with the card [[CREDIT_CARD|{' '.join(say_pairs(c[i:i + 4]) for i in range(0, 16, 4))}]]")
c = card("visa"); P("spoken", f"so it's [[CREDIT_CARD|{say(c, [4, 4, 4, 4], ', ')}]] did you get all that")
c = card("visa")
P("spoken", f"the card is {say(c[:4], [4])}, {say(c[4:8], [4])}, no sorry let me start over, [[CREDIT_CARD|{say(c, [4, 4, 4, 4])}]]")
c = card("mc"); P("spoken", f"uh the credit card um [[CREDIT_CARD|{say(c[:4], [4])} um {say(c[4:], [4, 4, 4])}]]")
c = card("amex"); P("spoken", f"amex [[CREDIT_CARD|{say(c, [4, 6, 5], ' ')}]] expires next year")
c = card("visa"); P("spoken", f"Agent: I'm showing [[CREDIT_CARD|{say(c, [4, 4, 4, 4], ', ')}]], is that the card you want to use?")
c = card("disc"); P("spoken", f"it's the discover [[CREDIT_CARD|{say(c, [4, 4, 4, 4])}]]")
c = card("visa"); P("spoken", f"number's [[CREDIT_CARD|{say(c, [2, 2, 2, 2, 2, 2, 2, 2], ' ')}]]")

# ================================================================= US_SSN
s = ssn(); P("written", f"it's [[US_SSN|{grp(s, [3, 2, 4])}]], that's my social")
s = ssn(); P("written", f"my social security number is [[US_SSN|{grp(s, [3, 2, 4], '-')}]]")
s = ssn(); P("written", f"ssn [[US_SSN|{s}]]")
s = ssn(); P("written", f"social is [[US_SSN|{grp(s, [3, 2, 4])}]] and my date of birth you need that too?")
s = ssn(); P("written", f"Agent: can you verify your social security number? Caller: yeah [[US_SSN|{grp(s, [3, 2, 4])}]]")
s = ssn(); P("written", f"the social on the account is [[US_SSN|{grp(s, [3, 2, 4], '-')}]] it's my husband's")
s = ssn(); P("written", f"um my social is [[US_SSN|{grp(s, [3, 3, 3])}]]")
s = ssn(); P("written", f"for the SSN I have [[US_SSN|{grp(s, [3, 2, 4])}]]")
s = ssn(); P("written", f"[[US_SSN|{grp(s, [3, 2, 4], '-')}]] is my social security")
s = ssn(); P("written", f"my social is [[US_SSN|{s[:3]} {s[3:5]} uh {s[5:]}]]")
s = ssn(); P("written", f"patient's social security number [[US_SSN|{grp(s, [3, 2, 4])}]]")

s = ssn(); P("spoken", f"my social is [[US_SSN|{say(s, [3, 2, 4], ', ')}]]")
s = ssn(); P("spoken", f"it's [[US_SSN|{say(s, [3, 2, 4])}]], that's my social")
s = ssn(); P("spoken", f"social security number [[US_SSN|{say(s, [3, 2, 4], ' ', pairs_last=True)}]]")
s = ssn(); P("spoken", f"uh the ssn is [[US_SSN|{say(s[:3], [3])} um {say(s[3:], [2, 4])}]]")
s = ssn(); P("spoken", f"my social security number is [[US_SSN|{say(s, [3, 2, 4], ', ')}]] do you need anything else")
s = ssn(); s2 = ssn()
P("spoken", f"my social is {say(s2[:3], [3])} {say(s2[3:5], [2])}, no wait, [[US_SSN|{say(s, [3, 2, 4])}]]")
s = ssn(); P("spoken", f"Agent: and the last question, your social? Caller: [[US_SSN|{say(s, [3, 2, 4], ', ')}]]")
s = ssn(); P("spoken", f"[[US_SSN|{say(s, [3, 2, 4])}]] is my social")
s = ssn(); P("spoken", f"okay social security [[US_SSN|{say(s, [9], '')}]]")
s = ssn(); P("spoken", f"for my son his social is [[US_SSN|{say(s, [3, 2, 4], ', ')}]]")
s = ssn(); P("spoken", f"the social on file should be [[US_SSN|{say(s, [3, 2, 4])}]]")

# ================================================================= US_BANK_NUMBER
a = digits(10); P("written", f"my checking account number is [[US_BANK_NUMBER|{a}]]")
a = digits(12); P("written", f"account number [[US_BANK_NUMBER|{grp(a, [4, 4, 4])}]]")
a = "000" + digits(9); P("written", f"it's [[US_BANK_NUMBER|{a}]], that's the savings account")
a = digits(8); P("written", f"the account is [[US_BANK_NUMBER|{grp(a, [4, 4], '-')}]] at the downtown branch")
a = digits(11); P("written", f"can you transfer it from account [[US_BANK_NUMBER|{a}]]")
a = digits(10); P("written", f"um my account number um [[US_BANK_NUMBER|{grp(a, [3, 3, 4])}]]")
a = digits(9); P("written", f"checking account [[US_BANK_NUMBER|{a}]]")
a = digits(13); P("written", f"Agent: I have account number [[US_BANK_NUMBER|{a}]] on the screen")
a = digits(10); P("written", f"deposit it into my account [[US_BANK_NUMBER|{grp(a, [5, 5])}]] please")
a = digits(12); P("written", f"the acct number is [[US_BANK_NUMBER|{a}]]")

a = digits(10); P("spoken", f"my account number is [[US_BANK_NUMBER|{say(a, [3, 3, 4])}]]")
a = digits(12); P("spoken", f"checking account [[US_BANK_NUMBER|{say(a, [4, 4, 4], ', ')}]]")
a = digits(9); P("spoken", f"it's [[US_BANK_NUMBER|{say(a, [3, 3, 3])}]], that's my account number")
a = digits(11); P("spoken", f"the savings account is [[US_BANK_NUMBER|{say(a[:5], [5])} uh {say(a[5:], [6])}]]")
a = digits(10); P("spoken", f"account number [[US_BANK_NUMBER|{say_pairs(a)}]]")
a = digits(8); P("spoken", f"um the account is [[US_BANK_NUMBER|{say(a, [4, 4])}]] at your bank")
a = digits(12); P("spoken", f"I wanna close account [[US_BANK_NUMBER|{say(a, [4, 4, 4])}]]")
a = digits(10); a2 = digits(10)
P("spoken", f"my account number is {say(a2[:4], [4])}, actually sorry that's the old one, it's [[US_BANK_NUMBER|{say(a, [3, 3, 4])}]]")
a = digits(10); P("spoken", f"Agent: and the account you want the funds in? Caller: account [[US_BANK_NUMBER|{say(a, [5, 5])}]]")

# ================================================================= ABA_ROUTING_NUMBER
r = aba(); P("written", f"routing number is [[ABA_ROUTING_NUMBER|{r}]]")
r = aba(); a = digits(10)
P("written", f"routing [[ABA_ROUTING_NUMBER|{r}]] and account [[US_BANK_NUMBER|{a}]]")
r = aba(); P("written", f"the routing number on my checks is [[ABA_ROUTING_NUMBER|{grp(r, [3, 3, 3])}]]")
r = aba(); P("written", f"[[ABA_ROUTING_NUMBER|{r}]] that's the routing number")
r = aba(); P("written", f"ABA [[ABA_ROUTING_NUMBER|{r}]] for the wire")
r = aba(); P("written", f"uh the routing is [[ABA_ROUTING_NUMBER|{grp(r, [4, 5])}]]")

r = aba(); P("spoken", f"routing number [[ABA_ROUTING_NUMBER|{say(r, [3, 3, 3])}]]")
r = aba(); a = digits(10)
P("spoken", f"the routing number is [[ABA_ROUTING_NUMBER|{say(r, [9], '')}]] and the account number is [[US_BANK_NUMBER|{say(a, [3, 3, 4])}]]")
r = aba(); P("spoken", f"it's [[ABA_ROUTING_NUMBER|{say(r, [3, 3, 3], ', ')}]], that's the routing")
r = aba(); P("spoken", f"um for direct deposit the routing number um [[ABA_ROUTING_NUMBER|{say(r, [4, 5])}]]")
r = aba(); P("spoken", f"Agent: what's the routing number for the other bank? Caller: [[ABA_ROUTING_NUMBER|{say(r, [3, 3, 3])}]]")
r = aba(); P("spoken", f"the aba routing is [[ABA_ROUTING_NUMBER|{say(r, [9], '')}]]")

# ================================================================= PHONE_NUMBER
p = phone(); P("written", f"you can reach me at [[PHONE_NUMBER|({p[:3]}) {p[3:6]}-{p[6:]}]]")
p = phone(); P("written", f"my cell is [[PHONE_NUMBER|{p[:3]} {p[3:6]} {p[6:]}]]")
p = phone(); P("written", f"[[PHONE_NUMBER|{p[:3]}-{p[3:6]}-{p[6:]}]] that's my mobile")
p = phone(); P("written", f"call me back at [[PHONE_NUMBER|{p}]] after five")
p = phone(); P("written", f"the best number is [[PHONE_NUMBER|+1 {p[:3]} {p[3:6]} {p[6:]}]]")
p = phone(); P("written", f"home phone [[PHONE_NUMBER|1-{p[:3]}-{p[3:6]}-{p[6:]}]]")
p = phone(); P("written", f"update my number to [[PHONE_NUMBER|{p[:3]}.{p[3:6]}.{p[6:]}]] please")
p = phone(); P("written", f"Agent: is [[PHONE_NUMBER|{p[:3]}-{p[3:6]}-{p[6:]}]] still a good number for you?")
p = phone(); P("written", f"my daughter's number is [[PHONE_NUMBER|{p[:3]} {p[3:6]} {p[6:]}]] she's the emergency contact")

p = phone(); P("spoken", f"my number is [[PHONE_NUMBER|{say(p, [3, 3, 4], ', ')}]]")
p = phone(); P("spoken", f"call me at [[PHONE_NUMBER|{say(p, [3, 3, 4], ' ', pairs_last=True)}]]")
p = phone(); P("spoken", f"it's [[PHONE_NUMBER|{say(p, [3, 3, 4])}]], that's my cell")
p = phone(); P("spoken", f"area code [[PHONE_NUMBER|{say(p[:3], [3])}, then {say(p[3:6], [3])}, {say_pairs(p[6:])}]]")
p = phone(); P("spoken", f"uh the phone number is [[PHONE_NUMBER|{say(p[:3], [3])} um {say(p[3:], [3, 4])}]]")
p = phone(); P("spoken", f"you can text me at [[PHONE_NUMBER|one {say(p, [3, 3, 4], ' ')}]]")
p = phone(); P("spoken", f"my work number is [[PHONE_NUMBER|{say(p, [3, 3, 4], ', ')}]] extension four two")
p = phone(); P("spoken", f"Agent: I have [[PHONE_NUMBER|{say(p, [3, 3, 4], ', ')}]] as your home phone, is that right?")
p = phone(); P("spoken", f"best number to reach me [[PHONE_NUMBER|{say(p, [3, 3, 4])}]]")

# ================================================================= EMAIL_ADDRESS
P("written", "my email is [[EMAIL_ADDRESS|dana.whitfield82@gmail.com]]")
P("written", "send it to [[EMAIL_ADDRESS|r_okafor@outlook.com]] please")
P("written", "it's [[EMAIL_ADDRESS|mkowalski@comcast.net]], that's my email")
P("written", "Agent: I'll send the statement to [[EMAIL_ADDRESS|t.nguyen@yahoo.com]], is that right?")
P("written", "uh email [[EMAIL_ADDRESS|jpatel.home@icloud.com]]")
P("spoken", "my email is [[EMAIL_ADDRESS|jane dot doe at gmail dot com]]")
P("spoken", "it's [[EMAIL_ADDRESS|mike underscore torres at yahoo dot com]]")
P("spoken", "send it to [[EMAIL_ADDRESS|dwhitfield eighty two at hotmail dot com]] please")
P("spoken", "um my email um [[EMAIL_ADDRESS|sarah dot k dot lee at outlook dot com]]")
P("spoken", "the email on file should be [[EMAIL_ADDRESS|bob at bobsplumbing dot net]]")
P("spoken", "it's [[EMAIL_ADDRESS|anna dash maria at icloud dot com]] that's anna with two n's")
P("spoken", "email address [[EMAIL_ADDRESS|kevin dot obrien nineteen at gmail dot com]]")
P("spoken", "you can email me at [[EMAIL_ADDRESS|lpham at ucsd dot edu]]")

# ================================================================= IBAN_CODE
i1 = iban("GB"); P("written", f"my IBAN is [[IBAN_CODE|{' '.join(i1[k:k + 4] for k in range(0, len(i1), 4))}]]")
i1 = iban("DE"); P("written", f"the iban for the transfer [[IBAN_CODE|{i1}]]")
i1 = iban("GB"); P("written", f"[[IBAN_CODE|{' '.join(i1[k:k + 4] for k in range(0, len(i1), 4))}]] that's the IBAN of my landlord")


def say_iban(x: str) -> str:
    out = []
    for k in range(0, len(x), 4):
        chunk = x[k:k + 4]
        words = [ch if ch.isalpha() else say_digit(ch, "oh") for ch in chunk]
        out.append(" ".join(words))
    return ", ".join(out)


i1 = iban("DE"); P("spoken", f"the iban is [[IBAN_CODE|{say_iban(i1)}]]")
i1 = iban("GB"); P("spoken", f"my IBAN [[IBAN_CODE|{say_iban(i1)}]]")
i1 = iban("DE"); P("spoken", f"uh it's a german account the IBAN is [[IBAN_CODE|{say_iban(i1)}]]")

# ================================================================= CVV / EXPIRY (and combos)
P("written", f"the security code is [[CARD_CVV|{digits(3)}]]")
P("written", f"cvv [[CARD_CVV|{digits(3)}]]")
P("written", f"the three digits on the back are [[CARD_CVV|{digits(3)}]]")
P("written", f"CVC is [[CARD_CVV|{digits(3)}]] and it expires [[CARD_EXPIRY|0{rng.randint(1, 9)}/2{rng.randint(6, 9)}]]")
P("written", f"it expires [[CARD_EXPIRY|{rng.randint(10, 12)}/{rng.randint(26, 30)}]]")
P("written", f"expiration date [[CARD_EXPIRY|0{rng.randint(1, 9)}/20{rng.randint(26, 31)}]]")
P("written", f"valid thru [[CARD_EXPIRY|0{rng.randint(1, 9)}/{rng.randint(26, 30)}]]")
P("written", f"the amex code on the front is [[CARD_CVV|{digits(4)}]]")
c = card("visa")
P("written", f"card [[CREDIT_CARD|{grp(c, [4, 4, 4, 4])}]] exp [[CARD_EXPIRY|0{rng.randint(1, 9)}/{rng.randint(26, 30)}]] cvv [[CARD_CVV|{digits(3)}]]")
c = card("mc")
P("written", f"it's [[CREDIT_CARD|{c}]], expires [[CARD_EXPIRY|{rng.randint(10, 12)}/{rng.randint(26, 30)}]], security code [[CARD_CVV|{digits(3)}]]")

cv = digits(3); P("spoken", f"the security code is [[CARD_CVV|{say(cv, [3])}]]")
cv = digits(3); P("spoken", f"um cvv [[CARD_CVV|{say(cv, [3])}]]")
cv = digits(3); P("spoken", f"the three numbers on the back [[CARD_CVV|{say(cv, [3])}]]")
cv = digits(3); P("spoken", f"[[CARD_CVV|{say(cv, [3])}]] is the security code")
m = rng.randint(1, 9); y = rng.randint(26, 30)
P("spoken", f"it expires [[CARD_EXPIRY|oh {ONES[m]} {say_pair(str(y))}]]")
m = rng.randint(1, 12); y = rng.randint(26, 30)
P("spoken", f"expiration is [[CARD_EXPIRY|{MONTHS[m - 1]} twenty {say_pair(str(y))}]]")
m = rng.randint(1, 12); y = rng.randint(26, 30)
P("spoken", f"expiry date [[CARD_EXPIRY|{MONTHS[m - 1]} {say_pair(str(y))}]]")
m = rng.randint(10, 12); y = rng.randint(26, 30)
P("spoken", f"the expiration date is [[CARD_EXPIRY|{TEENS[m - 10]} slash {say_pair(str(y))}]]")
c = card("visa"); m = rng.randint(1, 9); y = rng.randint(26, 30); cv = digits(3)
P("spoken", f"card number [[CREDIT_CARD|{say(c, [4, 4, 4, 4], ', ')}]], expires [[CARD_EXPIRY|oh {ONES[m]} {say_pair(str(y))}]], cvv [[CARD_CVV|{say(cv, [3])}]]")
c = card("mc"); m = rng.randint(1, 12); y = rng.randint(26, 30); cv = digits(3)
P("spoken", f"ok it's [[CREDIT_CARD|{say(c, [4, 4, 4, 4])}]] uh the expiration is [[CARD_EXPIRY|{MONTHS[m - 1]} {say_pair(str(y))}]] and the code on the back is [[CARD_CVV|{say(cv, [3])}]]")
cv = digits(4); P("spoken", f"the amex security code is [[CARD_CVV|{say(cv, [4])}]]")

# ================================================================= DATE_OF_BIRTH
def dob() -> tuple[int, int, int]:
    return rng.randint(1, 12), rng.randint(1, 28), rng.randint(1938, 2004)


m, d, y = dob(); P("written", f"my date of birth is [[DATE_OF_BIRTH|{m:02d}/{d:02d}/{y}]]")
m, d, y = dob(); P("written", f"DOB [[DATE_OF_BIRTH|{m}/{d}/{str(y)[2:]}]]")
m, d, y = dob(); P("written", f"I was born on [[DATE_OF_BIRTH|{MONTHS[m - 1].title()} {d}, {y}]]")
m, d, y = dob(); P("written", f"birthday is [[DATE_OF_BIRTH|{y}-{m:02d}-{d:02d}]]")
m, d, y = dob(); P("written", f"Agent: can you confirm your date of birth? Caller: [[DATE_OF_BIRTH|{m}/{d}/{y}]]")
m, d, y = dob(); P("written", f"the patient was born [[DATE_OF_BIRTH|{MONTHS[m - 1]} {d} {y}]]")
m, d, y = dob(); P("written", f"[[DATE_OF_BIRTH|{m:02d}-{d:02d}-{y}]] is my date of birth")

m, d, y = dob(); P("spoken", f"my date of birth is [[DATE_OF_BIRTH|{MONTHS[m - 1]} {ORD[d]} {say_year(y)}]]")
m, d, y = dob(); P("spoken", f"I was born [[DATE_OF_BIRTH|the {ORD[d]} of {MONTHS[m - 1]} {say_year(y)}]]")
m, d, y = dob(); P("spoken", f"uh birthday's [[DATE_OF_BIRTH|{MONTHS[m - 1]} {ORD[d]}, {say_year(y)}]]")
m, d, y = dob(); P("spoken", f"date of birth [[DATE_OF_BIRTH|{say_pair(f'{m:02d}')} {say_pair(f'{d:02d}')} {say_pair(str(y)[2:])}]]")
m, d, y = dob(); P("spoken", f"Agent: and your date of birth? Caller: [[DATE_OF_BIRTH|{MONTHS[m - 1]} {ORD[d]} {say_year(y)}]]")
m, d, y = dob(); P("spoken", f"my dob is [[DATE_OF_BIRTH|{say_pair(f'{m:02d}')}, {say_pair(f'{d:02d}')}, {say_year(y)}]]")
m, d, y = dob(); P("spoken", f"[[DATE_OF_BIRTH|{MONTHS[m - 1]} {ORD[d]} {say_year(y)}]], that's my date of birth")

# ================================================================= MEMBER_ID
P("written", f"my member ID is [[MEMBER_ID|{rng.choice('WXYZ')}{rng.choice('ABHJK')}{digits(9)}]]")
P("written", f"policy number [[MEMBER_ID|{digits(10)}]]")
P("written", f"subscriber ID [[MEMBER_ID|{grp(digits(9), [3, 3, 3])}]]")
P("written", f"the patient's MRN is [[MEMBER_ID|{digits(8, False)}]]")
P("written", f"[[MEMBER_ID|{rng.choice('ABC')}{digits(8)}]] that's my member number")
P("written", f"customer number [[MEMBER_ID|{digits(7)}]]")
mid = digits(9); P("spoken", f"my member id is [[MEMBER_ID|W {say(mid, [3, 3, 3])}]]")
mid = digits(10); P("spoken", f"policy number is [[MEMBER_ID|{say(mid, [4, 3, 3], ', ')}]]")
mid = digits(8); P("spoken", f"um subscriber number [[MEMBER_ID|{say(mid, [4, 4])}]]")
mid = digits(9); P("spoken", f"it's [[MEMBER_ID|X J H {say(mid, [3, 3, 3], ' ')}]], that's my member ID")
mid = digits(8); P("spoken", f"the medical record number is [[MEMBER_ID|{say(mid, [4, 4])}]]")
mid = digits(7); P("spoken", f"Agent: what's the policy number on the card? Caller: [[MEMBER_ID|{say(mid, [3, 4])}]]")

# ================================================================= mixed multi-entity
s = ssn(); m, d, y = dob()
P("written", f"social [[US_SSN|{grp(s, [3, 2, 4], '-')}]] date of birth [[DATE_OF_BIRTH|{m}/{d}/{y}]]")
s = ssn(); m, d, y = dob()
P("spoken", f"my social is [[US_SSN|{say(s, [3, 2, 4], ', ')}]] and I was born [[DATE_OF_BIRTH|{MONTHS[m - 1]} {ORD[d]} {say_year(y)}]]")
p = phone()
P("spoken", f"you can reach me at [[PHONE_NUMBER|{say(p, [3, 3, 4], ', ')}]] or email [[EMAIL_ADDRESS|carla dot mendez at gmail dot com]]")
p = phone(); mid = digits(9)
P("written", f"member id [[MEMBER_ID|{mid}]] and my phone is [[PHONE_NUMBER|{p[:3]}-{p[3:6]}-{p[6:]}]]")

# ================================================================= NEGATIVES
for _ in range(1):
    N("written", f"I was charged {fmt_money()} twice")
N("written", "the balance shows $1,250.75 but it should be less")
N("spoken", "I need to send two thousand four hundred dollars to my son")
N("spoken", "the payment was four hundred and twelve dollars and fifty cents")
N("spoken", "um it was like nineteen hundred ninety nine dollars")
N("written", "can I transfer 15000 from savings to checking")
N("spoken", "I'd like to withdraw three thousand five hundred")
N("written", f"my paycheck is {fmt_money()} every two weeks")
N("spoken", "the fee was thirty five dollars and I want it reversed")
N("written", "the wire was for $48,300.00 and it hasn't arrived")
N("spoken", "my limit is twelve thousand five hundred")
N("written", "the loan amount is 285,000 at 6.25 percent")
N("spoken", "the interest rate is twenty two point nine nine percent")
N("written", "apr went up to 24.99%")
N("spoken", "you guys take like three percent on every transaction")
N("written", "call me back at 4:30")
N("spoken", "can you call back around four thirty tomorrow")
N("spoken", "the branch is open nine to five monday through friday")
N("written", "hours are 8:30 to 6 on weekdays and 9 to 1 on saturday")
N("spoken", "my appointment is at ten fifteen")
N("written", "the payment is due on 03/15/2025")
N("spoken", "the transfer posted on march third twenty twenty five")
N("written", "I made the deposit on 11/02/2024 at the atm")
N("spoken", "the charge from june fourteenth is not mine")
N("written", "my appointment is 2025-07-09 at 2pm")
N("spoken", "the policy started january first twenty twenty three")
N("written", "I've been a customer since 2009")
N("spoken", "I opened the account back in nineteen ninety eight")
N("spoken", "we moved here in two thousand twelve")
N("written", "the statement from December 2023 is missing")
N("written", f"my order number is {digits(10)}")
N("written", f"confirmation number {digits(10)}")
N("spoken", f"the confirmation number is {say(digits(10), [3, 3, 4])}")
N("written", f"ticket {digits(8)} was closed without a fix")
N("spoken", f"I have a ticket number {say(digits(7), [3, 4])} from last week")
N("written", f"the tracking number is 1Z{rng.randint(100, 999)}A{digits(11)}")
N("spoken", f"reference number {say(digits(9), [3, 3, 3])}")
N("written", f"claim number {grp(digits(12), [4, 4, 4])}")
N("written", f"invoice {digits(9)} was paid already")
N("spoken", f"my order number is {say(digits(12), [4, 4, 4])}")
N("written", f"confirmation {grp(digits(16), [4, 4, 4, 4])} for the payment")
N("written", f"order #{digits(6)} shipped to the wrong address")
N("spoken", f"the claim is {say(digits(10), [5, 5])} for my er visit")
N("written", "I ordered 250 checks and got 200")
N("spoken", "I need three boxes of checks")
N("written", "there are 14 transactions I don't recognize")
N("spoken", "I've called like six times about this")
N("written", "you have 45,210 reward points")
N("spoken", "I take twenty milligrams twice a day")
N("written", "the prescription is for 90 tablets, 500 mg")
N("written", "it's the card ending in 4821")
N("spoken", "the card ending in four eight two one")
N("written", "Agent: I see a visa ending in 0397, is that the one?")
N("spoken", "last four of my social are six seven eight one")
N("written", "account ending 7734")
N("spoken", "the last four digits are nine nine oh two")
N("written", "call 123-456-7890 if that helps, it's a fake number")
N("written", "the number on the flyer was 000-123-4567")
N("spoken", "my zip is one oh oh two seven")
N("written", "zip code 94110")
N("written", "the branch on 5th avenue")
N("spoken", "I'm in room fourteen oh two")
N("written", "flight 2231 was cancelled so I need to reschedule")
N("spoken", "press one for english")
N("written", "press 2 then 4 then the pound key")
N("spoken", "extension four four oh two")
N("spoken", "you can also pay at healthpartners dot org")
N("spoken", "I logged in at chase dot com and it says locked")
N("written", "go to www.examplebank.com/help for the form")
N("spoken", "oh I see, okay, thank you so much")
N("spoken", "uh no I don't have it in front of me right now")
N("written", "I want to dispute the charge from the gas station")
N("spoken", "my mother passed away and I need to close her account")
N("written", "Agent: Thank you for calling, how can I help you today?")
N("spoken", "can you read me the last five transactions")
N("written", "the check number was 1042")
N("spoken", "check number one oh four two bounced")
N("written", "I'm 67 years old and on a fixed income")
N("spoken", "I'm sixty seven and my husband is seventy one")
N("written", "two kids ages 8 and 11 on the plan")
N("written", "my copay is $40 and the deductible is $1,500")
N("spoken", "the deductible is fifteen hundred and I've met about nine hundred")
N("written", "the visit on 4/12 was billed twice")
N("spoken", "the statement closing date is the twenty second")
N("written", "version 2.4.1 of the app keeps crashing")
N("written", "the atm ate my card at 10:42 pm")
N("spoken", "it was about nine forty five in the morning")
N("written", "I have 3 accounts with you")
N("spoken", "my balance is three thousand four hundred eighty two dollars and nineteen cents")
N("written", "it's been 30 days and 2 statements")
N("spoken", "the routing thing on the website just spins")
N("written", "my rent is 1850 a month")
N("written", "the pin reset takes 24 to 48 hours")

if __name__ == "__main__":
    # validate markup spans
    for r in ROWS:
        for e in r["entities"]:
            assert r["text"][e["start"]:e["end"]].strip() == r["text"][e["start"]:e["end"]], r
    with open(OUT, "w", encoding="utf-8") as f:
        for r in ROWS:
            f.write(json.dumps(r) + "\n")
    pos = sum(1 for r in ROWS if r["entities"])
    print(f"{len(ROWS)} utterances ({pos} positive, {len(ROWS) - pos} negative), "
          f"{sum(len(r['entities']) for r in ROWS)} entities, "
          f"{sum(1 for r in ROWS if r['form'] == 'spoken')} spoken -> {OUT}")
