"""Generate ``pii_corpus.jsonl``: labeled caller utterances, written and spoken, positive and negative.

    .venv/bin/python tests/data/pii_corpus_gen.py      # rewrites tests/data/pii_corpus.jsonl

Deterministic (fixed seed).  Values carry valid checksums (Luhn, SSN rules, ABA, IBAN
mod 97, real NANP area codes).  The spoken renderer here is a model of how people read
numbers (digit by digit, in pairs, "double"/"triple", "oh", hundreds, fillers, pauses
written as commas) written independently of the normalizer under test; labels are the
spans the template inserted, never adjusted to what the detector finds.

Markup: ``[[TYPE|surface]]`` marks an entity; :func:`parse_markup` turns a marked string
into text plus spans.  ``pii_hard_cases.txt`` uses the same markup, written by hand.
"""

from __future__ import annotations

import json
import random
import re
import string
from pathlib import Path

HERE = Path(__file__).parent
SEED = 5
MARK = re.compile(r"\[\[([A-Z_]+)\|(.*?)\]\]")

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"]
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth",
            "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth"]
AREA_CODES = ["212", "213", "312", "415", "617", "646", "702", "713", "404", "305", "503", "206", "214", "303", "612", "919", "480", "571", "862", "516"]
FIRST = ["john", "maria", "wei", "aisha", "carlos", "emma", "raj", "olga", "kevin", "fatima", "liam", "sofia", "david", "mei", "james", "noah"]
LAST = ["smith", "garcia", "chen", "khan", "novak", "johnson", "patel", "brown", "nguyen", "muller", "okafor", "rossi", "kim", "lopez"]
DOMAINS = [("gmail", "com"), ("yahoo", "com"), ("outlook", "com"), ("example", "org"), ("acme", "co"), ("fastmail", "fm"), ("proton", "me"), ("icloud", "com"), ("hotmail", "co", "uk")]


def parse_markup(marked: str) -> tuple[str, list[dict]]:
    text, ents, pos = [], [], 0
    out_len = 0
    for m in MARK.finditer(marked):
        before = marked[pos : m.start()]
        text.append(before)
        out_len += len(before)
        surface = m.group(2)
        ents.append({"type": m.group(1), "start": out_len, "end": out_len + len(surface)})
        text.append(surface)
        out_len += len(surface)
        pos = m.end()
    text.append(marked[pos:])
    return "".join(text), ents


# ---------------------------------------------------------------------------- values
def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        d = body + check
        total = 0
        for i, ch in enumerate(reversed(d)):
            v = int(ch) * (2 if i % 2 else 1)
            total += v - 9 if v > 9 else v
        if total % 10 == 0:
            return d
    raise AssertionError


def card(rng: random.Random) -> tuple[str, list[int]]:
    kind = rng.choice(["visa", "visa", "mc", "mc2", "amex", "disc"])
    if kind == "visa":
        return luhn_complete("4", 16, rng), [4, 4, 4, 4]
    if kind == "mc":
        return luhn_complete(str(rng.randint(51, 55)), 16, rng), [4, 4, 4, 4]
    if kind == "mc2":
        return luhn_complete(str(rng.randint(2221, 2720)), 16, rng), [4, 4, 4, 4]
    if kind == "amex":
        return luhn_complete(rng.choice(["34", "37"]), 15, rng), [4, 6, 5]
    return luhn_complete("6011", 16, rng), [4, 4, 4, 4]


def ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def aba(rng: random.Random) -> str:
    while True:
        body = rng.choice("0123") + "".join(rng.choice(string.digits) for _ in range(7))
        w = [3, 7, 1, 3, 7, 1, 3, 7]
        s = sum(int(c) * k for c, k in zip(body, w))
        check = (10 - s % 10) % 10
        d = body + str(check)
        if d != "000000000":
            return d


def account(rng: random.Random) -> str:
    n = rng.choice([8, 9, 10, 10, 11, 12])
    return str(rng.randint(1, 9)) + "".join(rng.choice(string.digits) for _ in range(n - 1))


def phone(rng: random.Random) -> str:
    return rng.choice(AREA_CODES) + str(rng.randint(2, 9)) + "".join(rng.choice(string.digits) for _ in range(2)) + f"{rng.randint(0, 9999):04d}"


def iban(rng: random.Random) -> str:
    country, bban = rng.choice([
        ("DE", lambda: "".join(rng.choice(string.digits) for _ in range(18))),
        ("GB", lambda: rng.choice(["WEST", "NWBK", "BARC"]) + "".join(rng.choice(string.digits) for _ in range(14))),
        ("FR", lambda: "".join(rng.choice(string.digits) for _ in range(23))),
    ])
    b = bban()
    num = "".join(str(int(c, 36)) for c in b + country + "00")
    check = 98 - int(num) % 97
    return f"{country}{check:02d}{b}"


# ---------------------------------------------------------------------------- speaking
def say_digit(d: str, rng: random.Random) -> str:
    if d == "0":
        return rng.choice(["oh", "oh", "zero"])
    return ONES[int(d)]


def say_pair(p: str, rng: random.Random) -> str:
    if p[0] == "0":
        return f"{say_digit('0', rng)} {ONES[int(p[1])]}"
    if p[0] == "1":
        return TEENS[int(p[1])]
    return TENS[int(p[0])] + ("" if p[1] == "0" else " " + ONES[int(p[1])])


def say_digits(g: str, rng: random.Random, doubles: float = 0.3) -> str:
    words, i = [], 0
    while i < len(g):
        if i + 2 < len(g) and g[i] == g[i + 1] == g[i + 2] and rng.random() < doubles:
            words.append("triple " + say_digit(g[i], rng))
            i += 3
        elif i + 1 < len(g) and g[i] == g[i + 1] and rng.random() < doubles:
            words.append("double " + say_digit(g[i], rng))
            i += 2
        else:
            words.append(say_digit(g[i], rng))
            i += 1
    return " ".join(words)


def say_group(g: str, rng: random.Random) -> str:
    style = rng.random()
    if len(g) == 2 and style < 0.6:
        return say_pair(g, rng)
    if len(g) == 4 and style < 0.25 and g[0] != "0" and g[2] != "0":
        return say_pair(g[:2], rng) + " " + say_pair(g[2:], rng)
    if len(g) == 3 and g[1:] == "00" and g[0] != "0" and style < 0.7:
        return ONES[int(g[0])] + " hundred"
    return say_digits(g, rng)


def split(d: str, groups: list[int]) -> list[str]:
    out, i = [], 0
    for n in groups:
        out.append(d[i : i + n])
        i += n
    if i < len(d):
        out.append(d[i:])
    return [g for g in out if g]


def speak(d: str, groups: list[int], rng: random.Random) -> str:
    parts = [say_group(g, rng) for g in split(d, groups)] if rng.random() < 0.75 else [say_digits(d, rng, 0.2)]
    seps = [", ", " ", ", ", "... ", ", um, ", " uh "]
    out = parts[0]
    for p in parts[1:]:
        out += rng.choice(seps) + p
    return out


def write(d: str, groups: list[int], rng: random.Random, seps: str = " -") -> str:
    r = rng.random()
    if r < 0.3:
        return d
    sep = rng.choice(seps)
    return sep.join(split(d, groups))


def write_phone(d: str, rng: random.Random) -> str:
    a, b, c = d[:3], d[3:6], d[6:]
    return rng.choice([f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"{a} {b} {c}", d, f"+1 {a} {b} {c}", f"1-{a}-{b}-{c}"])


def say_email(rng: random.Random) -> tuple[str, str]:
    f, l = rng.choice(FIRST), rng.choice(LAST)
    dom = rng.choice(DOMAINS)
    conn = rng.choice(["dot", "underscore", "dot", ""])
    digits = str(rng.randint(1, 99)) if rng.random() < 0.4 else ""
    local_w = f + ("." if conn == "dot" else "_" if conn == "underscore" else "") + l + digits
    local_s = f + (f" {conn} " if conn else "") + l + (" " + say_digits(digits, rng, 0) if digits and rng.random() < 0.5 else (" " + say_pair(digits, rng) if len(digits) == 2 else (" " + say_digits(digits, rng, 0) if digits else "")))
    if not conn:
        local_s = f + l + local_s[len(f + l):]
    written = local_w + "@" + ".".join(dom)
    spoken = local_s + " at " + " dot ".join(dom)
    return written, spoken


def say_year(y: int, rng: random.Random) -> str:
    if 2000 <= y <= 2009:
        return "two thousand" + ("" if y == 2000 else (" and " if rng.random() < 0.3 else " ") + ONES[y - 2000])
    return say_pair(str(y)[:2], rng) + " " + say_pair(str(y)[2:], rng)


# ---------------------------------------------------------------------------- templates
CARD_T = [
    "my card number is {}", "sure, the card is {}", "it's a visa, {}", "the long number on the card is {}",
    "ok so the credit card number is {} and that's it", "card number {}", "um yeah my debit card is {}",
    "can you charge my mastercard {} please", "{} is the card I want to use", "the number on the front of my card is {}",
    "I'd like to pay with card {}", "let me read it, card number, {}",
]
SSN_T = [
    "my social is {}", "social security number {}", "sure it's {} that's my social", "my SSN is {}",
    "the social on the account is {}", "okay my social security number is {}", "SSN {}", "um, my social, it's {}",
]
ACCT_T = [
    "my account number is {}", "the checking account is {}", "savings account number {}", "account {} please",
    "it's account number {}", "my bank account number is {}", "yeah the account is {}", "acct number {}",
    "I want to transfer from checking account {}", "can you look up account number {} for me",
]
ROUTING_T = ["the routing number is {}", "routing {}", "and the ABA routing number is {}", "my bank's routing number is {}"]
PHONE_T = [
    "you can reach me at {}", "my phone number is {}", "call me back on {}", "my cell is {}", "the best number is {}",
    "my mobile number is {}", "please text me at {}", "my home number is {}",
]
EMAIL_T = ["my email is {}", "send it to {}", "you can email me at {}", "the email on file should be {}", "it's {}"]
IBAN_T = ["my IBAN is {}", "the IBAN is {}", "please send it to IBAN {}", "transfer to {}"]
MEMBER_T = ["my member ID is {}", "policy number {}", "the member number is {}", "my insurance ID is {}", "subscriber ID {}", "my policy number is {}"]
DOB_T = ["my date of birth is {}", "I was born on {}", "date of birth {}", "birthday is {}", "DOB {}"]

NEG_WRITTEN = [
    "I paid $2,000 last month", "the meeting is at 10:30 tomorrow", "I have been a customer since 1990",
    "my order number is {order}", "ticket {order} is still open", "confirmation number {order}", "the reference is {order}",
    "I was charged 149.99 twice", "call me after 5 pm", "we moved in 2015", "zip code {zip}",
    "it was about 45 minutes on hold", "my tracking number is {order}", "case number {order}", "invoice {order} was wrong",
    "the number 123-456-7890 on the website does not work", "I called 555-0100 earlier", "I have 3 cards and 2 accounts",
    "the balance was 12,450 dollars", "flight 4821 was delayed", "room 1204 please", "my claim number is {order}",
    "it costs 1,299 per year", "the fee was 35 dollars on 12/03", "extension 4521", "page 1 of 20",
]
NEG_SPOKEN = [
    "I paid two thousand dollars last month", "the meeting is at ten thirty tomorrow", "I've been a customer since nineteen ninety",
    "my order number is {order_s}", "ticket {order_s} is still open", "um the confirmation number is {order_s}",
    "I was charged a hundred and forty nine ninety nine twice", "call me back in twenty minutes", "we moved in two thousand fifteen",
    "the zip code is {zip_s}", "I was on hold for forty five minutes",
    "my tracking number is {order_s}", "case number {order_s}", "the balance is twelve thousand four hundred fifty dollars",
    "I have three cards and two accounts", "flight forty eight twenty one was delayed", "oh, one more thing", "room twelve oh four please",
    "it was like two or three times", "we've got four kids, one is seven and one is nine", "my claim number is {order_s}",
    "it costs twelve ninety nine a year", "one two three, testing, can you hear me", "I'm sixty five years old",
    "the fee was thirty five dollars", "in nineteen eighty four I opened the account", "give me five minutes",
]


def entity(t: str, surface: str) -> str:
    return f"[[{t}|{surface}]]"


def gen(rng: random.Random) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []  # (form, marked)
    for form in ("written", "spoken"):
        sp = form == "spoken"
        for _ in range(30):
            d, g = card(rng)
            rows.append((form, rng.choice(CARD_T).format(entity("CREDIT_CARD", speak(d, g, rng) if sp else write(d, g, rng)))))
        for _ in range(26):
            d = ssn(rng)
            rows.append((form, rng.choice(SSN_T).format(entity("US_SSN", speak(d, [3, 2, 4], rng) if sp else write(d, [3, 2, 4], rng, "- ")))))
        for _ in range(26):
            d = account(rng)
            g = [4] * 4 if rng.random() < 0.5 else [len(d)]
            rows.append((form, rng.choice(ACCT_T).format(entity("US_BANK_NUMBER", speak(d, g, rng) if sp else d))))
        for _ in range(8):
            d = aba(rng)
            rows.append((form, rng.choice(ROUTING_T).format(entity("ABA_ROUTING_NUMBER", speak(d, [3, 3, 3], rng) if sp else d))))
        for _ in range(14):
            d = phone(rng)
            rows.append((form, rng.choice(PHONE_T).format(entity("PHONE_NUMBER", speak(d, [3, 3, 4], rng) if sp else write_phone(d, rng)))))
        for _ in range(10):
            w, s = say_email(rng)
            rows.append((form, rng.choice(EMAIL_T).format(entity("EMAIL_ADDRESS", s if sp else w))))
        for _ in range(5):
            v = iban(rng)
            if sp:
                surface = " ".join(c if c.isalpha() else ONES[int(c)] for c in v)
            else:
                surface = " ".join(v[i : i + 4] for i in range(0, len(v), 4)) if rng.random() < 0.6 else v
            rows.append((form, rng.choice(IBAN_T).format(entity("IBAN_CODE", surface))))
        for _ in range(8):
            d = str(rng.randint(10**7, 10**10))
            prefix = rng.choice(["", "", "W", "XJ", "MB"])
            if sp:
                surface = (" ".join(prefix) + " " if prefix else "") + speak(d, [3, 3, 4], rng)
            else:
                surface = prefix + d
            rows.append((form, rng.choice(MEMBER_T).format(entity("MEMBER_ID", surface))))
        for _ in range(8):
            y, m, day = rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28)
            if sp:
                surface = rng.choice([
                    f"{MONTHS[m - 1]} {ORDINALS[day - 1] if day <= 20 else TENS[2] + ' ' + ORDINALS[day - 21]} {say_year(y, rng)}",
                    f"the {ORDINALS[day - 1] if day <= 20 else 'twentieth'} of {MONTHS[m - 1]} {say_year(y, rng)}",
                    f"{say_digits(f'{m:02d}', rng, 0)} {say_pair(f'{day:02d}', rng)} {say_year(y, rng)}",
                ])
            else:
                surface = rng.choice([f"{m:02d}/{day:02d}/{y}", f"{m}/{day}/{y}", f"{MONTHS[m - 1].title()} {day}, {y}", f"{y}-{m:02d}-{day:02d}"])
            rows.append((form, rng.choice(DOB_T).format(entity("DATE_OF_BIRTH", surface))))
        # card with expiry and security code
        for _ in range(10):
            d, g = card(rng)
            mm, yy = rng.randint(1, 12), rng.randint(25, 31)
            cvv = "".join(rng.choice(string.digits) for _ in range(4 if d[:2] in ("34", "37") else 3))
            if sp:
                exp = rng.choice([f"{say_digit('0', rng)} {ONES[mm]}" if mm < 10 else say_pair(f'{mm}', rng), MONTHS[mm - 1]]) + " " + say_pair(f"{yy}", rng)
                c = say_digits(cvv, rng, 0)
                num = speak(d, g, rng)
            else:
                exp = f"{mm:02d}/{yy}"
                c = cvv
                num = write(d, g, rng)
            t = rng.choice([
                "card {n}, expires {e}, security code {c}",
                "the card is {n} and it expires {e} and the CVV is {c}",
                "ok {n} expiration {e} and the three digits on the back are {c}",
            ])
            rows.append((form, t.format(n=entity("CREDIT_CARD", num), e=entity("CARD_EXPIRY", exp), c=entity("CARD_CVV", c))))
        # account + routing
        for _ in range(6):
            a, r = account(rng), aba(rng)
            sa = speak(a, [len(a)], rng) if sp else a
            sr = speak(r, [3, 3, 3], rng) if sp else r
            rows.append((form, f"my account number is {entity('US_BANK_NUMBER', sa)} and the routing number is {entity('ABA_ROUTING_NUMBER', sr)}"))
        # negatives
        negs = NEG_SPOKEN if sp else NEG_WRITTEN
        for t in negs:
            order = str(rng.randint(10**5, 10**9))
            z = f"{rng.randint(10000, 99999)}"
            rows.append((form, t.format(order=order, zip=z, order_s=speak(order, [3] * 4, rng), zip_s=say_digits(z, rng, 0))))
    return rows


def main() -> None:
    rng = random.Random(SEED)
    out = HERE / "pii_corpus.jsonl"
    with out.open("w") as f:
        for i, (form, marked) in enumerate(gen(rng)):
            text, ents = parse_markup(marked)
            for e in ents:
                e["form"] = form
            f.write(json.dumps({"id": f"gen-{i:04d}", "form": form, "text": text, "entities": ents}) + "\n")
    hard = 0
    with (HERE / "pii_hard_cases.txt").open() as src, out.open("a") as f:
        for line in src:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            form, _, marked = line.partition("|")
            text, ents = parse_markup(marked)
            for e in ents:
                e["form"] = form
            f.write(json.dumps({"id": f"hard-{hard:03d}", "form": form, "text": text, "entities": ents}) + "\n")
            hard += 1
    print(f"wrote {out} ({hard} hand-written hard cases appended)")


if __name__ == "__main__":
    main()
