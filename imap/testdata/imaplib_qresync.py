"""An offline IMAP client in Python's imaplib that syncs as Thunderbird
does with QRESYNC (RFC 7162), driven by clients_test.go.

Usage: imaplib_qresync.py HOST PORT USER PASSWORD CACHE [utf8]

CACHE is the client's directory: state.json (per folder its UIDVALIDITY,
HIGHESTMODSEQ and per UID the flags and the file holding the message)
and the messages' bytes under msgs/. The first run fetches every folder
whole. A later run first sends the local changes listed in
CACHE/changes.json (STORE with UNCHANGEDSINCE, EXPUNGE, APPEND), then
resyncs each folder with SELECT (QRESYNC (uidvalidity modseq known-uids)):
VANISHED (EARLIER) removes messages, FETCH updates flags, and only UIDs
it does not hold are fetched whole. It prints what it learnt, one line
each ("vanished FOLDER UIDS", "changed FOLDER UIDS", "fetched FOLDER
UIDS", "modified FOLDER UIDS", "appended FOLDER UID", "dropped FOLDER"),
and OK at the end; any failed expectation exits non-zero with the reason.
With "utf8" it also enables UTF8=ACCEPT and names folders in UTF-8.
"""
import base64
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in testdata
import imaplib  # noqa: E402
from imaplib_common import check, mutf7, ok  # noqa: E402 (beside this script)

host, port, user, password, cache = sys.argv[1:6]
# "utf8": ENABLE UTF8=ACCEPT too, and name folders in UTF-8 (RFC 6855).
utf8 = sys.argv[6:] == ["utf8"]
state_file = os.path.join(cache, "state.json")
changes_file = os.path.join(cache, "changes.json")
msg_dir = os.path.join(cache, "msgs")
os.makedirs(msg_dir, exist_ok=True)


def mutf7_decode(name):
    """The UTF-8 form of a modified UTF-7 name (RFC 3501 section 5.1.3)."""
    out, i = [], 0
    while i < len(name):
        if name[i] != "&":
            out.append(name[i])
            i += 1
            continue
        j = name.index("-", i)
        if j == i + 1:
            out.append("&")
        else:
            b64 = name[i + 1:j].replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            out.append(base64.b64decode(b64).decode("utf-16-be"))
        i = j + 1
    return "".join(out)


def quoted(name):
    if not utf8:
        name = mutf7(name)
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def uid_set(uids):
    """A compact UID set: 1:3,7."""
    uids = sorted(uids)
    parts, i = [], 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        parts.append(str(uids[i]) if i == j else "%d:%d" % (uids[i], uids[j]))
        i = j + 1
    return ",".join(parts)


def parse_set(s):
    out = set()
    for part in s.split(","):
        lo, _, hi = part.partition(":")
        lo, hi = int(lo), int(hi or lo)
        out.update(range(min(lo, hi), max(lo, hi) + 1))
    return out


def take(M, name):
    return M.untagged_responses.pop(name, [])


def fetch_items(data):
    """(text, literal) per FETCH response: imaplib splits a response with
    a literal into a tuple and the rest of the line."""
    out = []
    for d in data:
        if d is None:
            continue
        if isinstance(d, tuple):
            out.append([d[0], d[1]])
        elif out and not re.match(rb"^\d+ \(", d):
            out[-1][0] += d
        else:
            out.append([d, None])
    res = []
    for text, body in out:
        uid = int(re.search(rb"UID (\d+)", text).group(1))
        m = re.search(rb"FLAGS \(([^)]*)\)", text)
        flags = None
        if m:
            flags = sorted(f for f in m.group(1).decode().split() if f.lower() != "\\recent")
        ms = re.search(rb"MODSEQ \((\d+)\)", text)
        res.append((uid, flags, int(ms.group(1)) if ms else 0, body))
    return res


def clear(M):
    M.untagged_responses = {}


def select(M, folder, params=""):
    """SELECT with QRESYNC parameters; the untagged responses."""
    clear(M)
    args = [quoted(folder)] + ([params] if params else [])
    typ, data = M._simple_command("SELECT", *args)
    check(typ == "OK", "SELECT %s %s: %s %r" % (folder, params, typ, data))
    M.state = "SELECTED"
    return M.untagged_responses


def store_msg(folder_state, uid, flags, body):
    with open(os.path.join(msg_dir, folder_state["dir"] + "." + str(uid)), "wb") as f:
        f.write(body)
    folder_state["msgs"][str(uid)] = {"flags": flags}


def drop_msg(folder_state, uid):
    folder_state["msgs"].pop(str(uid), None)
    p = os.path.join(msg_dir, folder_state["dir"] + "." + str(uid))
    if os.path.exists(p):
        os.remove(p)


def body_of(folder_state, uid):
    with open(os.path.join(msg_dir, folder_state["dir"] + "." + str(uid)), "rb") as f:
        return f.read()


state = {"folders": {}, "next_dir": 0}
if os.path.exists(state_file):
    with open(state_file) as f:
        state = json.load(f)
folders = state["folders"]

M = imaplib.IMAP4(host, int(port))
ok(M.login(user, password), "LOGIN")
check("QRESYNC" in M.capabilities or b"QRESYNC" in ok(M.capability(), "CAPABILITY")[0], "no QRESYNC")
data = ok(M._simple_command("ENABLE", "QRESYNC"), "ENABLE QRESYNC")
check(any(b"QRESYNC" in d for d in take(M, "ENABLED")), "ENABLED QRESYNC")
if utf8:
    # imaplib's enable() switches its own encoding to UTF-8.
    ok(M.enable("UTF8=ACCEPT"), "ENABLE UTF8=ACCEPT")

# Local changes first, as a client coming back online replays them.
changes = []
if os.path.exists(changes_file):
    with open(changes_file) as f:
        changes = json.load(f)
    os.remove(changes_file)
for ch in changes:
    folder = ch["folder"]
    fs = folders[folder]
    if "append" in ch:
        body = ch["append"].encode()
        flags = sorted(ch.get("flags", []))
        clear(M)
        # A plain literal: imaplib's append() wraps the message itself in
        # "UTF8 (...)" once UTF8=ACCEPT is on.
        M.literal = body
        typ, data = M._simple_command("APPEND", quoted(folder), "(" + " ".join(flags) + ")")
        check(typ == "OK", "APPEND: %s %r" % (typ, data))
        m = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
        check(m is not None, "APPEND without APPENDUID: %r" % data)
        check(int(m.group(1)) == fs["uidvalidity"], "APPENDUID validity %r" % data)
        uid = int(m.group(2))
        store_msg(fs, uid, flags, body)
        print("appended %s %d" % (folder, uid))
        continue
    uid = next(int(u) for u in fs["msgs"] if ch["marker"].encode() in body_of(fs, int(u)))
    select(M, folder)
    if ch.get("expunge"):
        clear(M)
        ok(M.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
        ok(M.uid("EXPUNGE", str(uid)), "UID EXPUNGE")
        drop_msg(fs, uid)
        continue
    clear(M)
    args = ["(UNCHANGEDSINCE %d)" % fs["modseq"]]
    typ, data = M.uid("STORE", str(uid), *args, ch["op"] + "FLAGS.SILENT", "(" + " ".join(ch["flags"]) + ")")
    check(typ == "OK", "UID STORE: %s %r" % (typ, data))
    modified = take(M, "MODIFIED")
    if modified:
        # Changed on the server since the client last saw it: the
        # server's flags win, learnt in the resync below.
        print("modified %s %s" % (folder, modified[0].decode()))
        continue
    cur = set(fs["msgs"][str(uid)]["flags"])
    if ch["op"] == "+":
        cur |= set(ch["flags"])
    elif ch["op"] == "-":
        cur -= set(ch["flags"])
    else:
        cur = set(ch["flags"])
    fs["msgs"][str(uid)]["flags"] = sorted(cur)

# The folder list.
clear(M)
data = ok(M.list('""', "*"), "LIST")
server_folders = set()
for d in data:
    if isinstance(d, tuple):
        d = d[0] + b'"' + d[1] + b'"'
    m = re.match(rb'^\(([^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (.*)$', d)
    check(m is not None, "LIST line %r" % d)
    if b"\\noselect" in m.group(1).lower() or b"\\nonexistent" in m.group(1).lower():
        continue
    name = m.group(2).decode("utf-8" if utf8 else "ascii")
    if name.startswith('"'):
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    server_folders.add(name if utf8 else mutf7_decode(name))
for gone in sorted(set(folders) - server_folders):
    for uid in list(folders[gone]["msgs"]):
        drop_msg(folders[gone], int(uid))
    del folders[gone]
    print("dropped %s" % gone)

for folder in sorted(server_folders):
    fs = folders.get(folder)
    if fs is not None:
        known = [int(u) for u in fs["msgs"]]
        params = "(QRESYNC (%d %d%s))" % (fs["uidvalidity"], fs["modseq"], " " + uid_set(known) if known else "")
        resp = select(M, folder, params)
        validity = int(resp["UIDVALIDITY"][0])
        if validity != fs["uidvalidity"]:
            for uid in known:
                drop_msg(fs, uid)
            fs = None
    else:
        resp = select(M, folder, "(CONDSTORE)")
        validity = int(resp["UIDVALIDITY"][0])
    if fs is None:
        fs = {"dir": "f%d" % state["next_dir"], "uidvalidity": validity, "modseq": 0, "msgs": {}}
        state["next_dir"] += 1
        folders[folder] = fs
    modseq = int(resp["HIGHESTMODSEQ"][0])
    uidnext = int(resp["UIDNEXT"][0])
    vanished = set()
    for v in resp.get("VANISHED", []):
        v = v.decode()
        check(v.startswith("(EARLIER) "), "VANISHED without (EARLIER) in SELECT: %r" % v)
        vanished |= parse_set(v[len("(EARLIER) "):])
    if vanished:
        check(vanished <= {int(u) for u in fs["msgs"]}, "VANISHED names UIDs never known: %r" % vanished)
        for uid in vanished:
            drop_msg(fs, uid)
        print("vanished %s %s" % (folder, uid_set(vanished)))
    changed = []
    for uid, flags, _, body in fetch_items(resp.get("FETCH", [])):
        check(body is None, "SELECT sent message data")
        check(flags is not None, "FETCH without FLAGS in QRESYNC")
        check(str(uid) in fs["msgs"], "SELECT (QRESYNC) reported UID %d, not among the known UIDs" % uid)
        fs["msgs"][str(uid)]["flags"] = flags
        changed.append(uid)
    if changed:
        print("changed %s %s" % (folder, uid_set(changed)))
    # Only UIDs not held yet are fetched whole.
    top = max([int(u) for u in fs["msgs"]] + [0])
    if uidnext > top + 1:
        clear(M)
        data = ok(M.uid("SEARCH", "UID", "%d:*" % (top + 1)), "UID SEARCH")
        new = [u for u in map(int, data[0].split()) if u > top and str(u) not in fs["msgs"]]
        if new:
            clear(M)
            data = ok(M.uid("FETCH", uid_set(new), "(UID FLAGS MODSEQ BODY.PEEK[])"), "UID FETCH")
            got = []
            for uid, flags, _, body in fetch_items(data):
                check(body is not None and flags is not None, "FETCH without body or flags")
                store_msg(fs, uid, flags, body)
                got.append(uid)
            check(sorted(got) == sorted(new), "fetched %r, asked %r" % (got, new))
            print("fetched %s %s" % (folder, uid_set(got)))
    fs["modseq"] = modseq

M.logout()
with open(state_file, "w") as f:
    json.dump(state, f, indent=1, sort_keys=True)
print("OK", flush=True)
