"""What the imaplib scripts of the interop tests share."""
import base64
import sys


def check(cond, what):
    """Exit non-zero with what unless cond."""
    if not cond:
        sys.exit("failed: " + what)


def ok(resp, what):
    """The data of an imaplib reply that must be OK."""
    typ, data = resp
    check(typ == "OK", "%s: %s %r" % (what, typ, data))
    return data


def mutf7(name):
    """The modified UTF-7 form of name (RFC 3501 section 5.1.3)."""
    out, run = [], []

    def flush():
        if run:
            b64 = base64.b64encode("".join(run).encode("utf-16-be")).decode()
            out.append("&" + b64.rstrip("=").replace("/", ",") + "-")
            run.clear()

    for c in name:
        if 0x20 <= ord(c) <= 0x7E:
            flush()
            out.append("&-" if c == "&" else c)
        else:
            run.append(c)
    flush()
    return "".join(out)
