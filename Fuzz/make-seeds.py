#!/usr/bin/env python3
"""Writes the fuzz target's seed corpus (Fuzz/corpus/): the requests of the real MIT traces, and
hand-made sessions for what the traces never send.

The traces (../shared/design/kcm-observed-traces.txt) log each request decoded, one per line, e.g.
`c14 RETRIEVE name="0" flags="0x03000001" mheader="0x3" mclient="alice@R" mserver="host/x@R" ...`;
they carry no raw bytes. This script encodes each line again from kcm-protocol.md §1.3 and §2
(independently of the Swift encoder, so that its mistakes are not copied). Credentials that the log
does not show (REPLACE's list, STORE's credential) are made up to fit: a TGT and a config entry for
kinit, a service ticket for the service kvno asked for.

Every seed is an input for the fuzz target: two plan bytes (FuzzPlan.swift: mode, seed), then the
request frames as a client sends them. One seed per traced command (`=== ...` block), one for each
whole traced mode, and the hand-made ones.

Usage: Fuzz/make-seeds.py [TRACES] [OUTPUT_DIR]   (defaults: ../shared/design/..., Fuzz/corpus)
Rerun it when the traces or the plan bytes change, and commit the result.
"""

import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TRACES = os.path.join(HERE, "..", "..", "shared", "design", "kcm-observed-traces.txt")
DEFAULT_OUTPUT = os.path.join(HERE, "corpus")

OPCODES = {
    "NOOP": 0, "GET_NAME": 1, "RESOLVE": 2, "GEN_NEW": 3, "INITIALIZE": 4, "DESTROY": 5, "STORE": 6,
    "RETRIEVE": 7, "GET_PRINCIPAL": 8, "GET_CRED_UUID_LIST": 9, "GET_CRED_BY_UUID": 10, "REMOVE_CRED": 11,
    "SET_FLAGS": 12, "CHOWN": 13, "CHMOD": 14, "GET_INITIAL_TICKET": 15, "GET_TICKET": 16, "MOVE_CACHE": 17,
    "GET_CACHE_UUID_LIST": 18, "GET_CACHE_BY_UUID": 19, "GET_DEFAULT_CACHE": 20, "SET_DEFAULT_CACHE": 21,
    "GET_KDC_OFFSET": 22, "SET_KDC_OFFSET": 23, "ADD_NTLM_CRED": 24, "HAVE_NTLM_CRED": 25,
    "DEL_NTLM_CRED": 26, "DO_NTLM_AUTH": 27, "GET_NTLM_USER_LIST": 28, "GET_CRED_LIST": 13001,
    "REPLACE": 13002, "CCACHED_STATUS": 0x5000, "CCACHED_WATCH": 0x5001, "CCACHED_RENEW": 0x5002,
    "CCACHED_RENEWAL_STATE": 0x5003, "CCACHED_STOP": 0x5004, "CCACHED_ATTACH": 0x5005, "CCACHED_DETACH": 0x5006,
}

# Plan bytes (FuzzPlan.swift). Mode bits 0-1 cutting, 2-3 which peer (owner or stranger) sends each
# frame, 4-5 purging, 6 reads spanning consecutive frames of one peer, 7 the 512-byte request limit.
PLAN_PLAIN = bytes([0x00, 0x00])

# The traces' clock: kvno's "now" in the RETRIEVE templates.
NOW = 1795305644
CONFIG_REALM = "X-CACHECONF:"


# --- Wire encoding (kcm-protocol.md §2, all big-endian) ---------------------------------------------

def u8(value): return struct.pack(">B", value)
def u16(value): return struct.pack(">H", value)
def s16(value): return struct.pack(">h", value)
def u32(value): return struct.pack(">I", value)
def s32(value): return struct.pack(">i", value)
def data(raw): return u32(len(raw)) + raw
def name(text): return text.encode() + b"\0"


def principal(text):
    """`comp/comp@REALM`, optionally with `[nt=N]` (the traces' notation); the realm is after the last @.
    A tuple (components, realm) gives the components as they are (a config entry's third one holds
    a whole principal, slash and at-sign included)."""
    name_type = 1
    if isinstance(text, tuple):
        parts, realm = text
    else:
        match = re.fullmatch(r"(.*)\[nt=(-?\d+)\]", text)
        if match:
            text, name_type = match.group(1), int(match.group(2))
        components, _, realm = text.rpartition("@")
        parts = components.split("/")
    return s32(name_type) + u32(len(parts)) + data(realm.encode()) + b"".join(data(p.encode()) for p in parts)


def realm_of(text):
    return text.split("[")[0].rpartition("@")[2]


def credential(client, server, enctype=18, key=b"\x11" * 32, times=(0, 0, 0, 0), is_skey=0, flags=0,
               addresses=(), authdata=(), ticket=b"", second_ticket=b""):
    """A credential, FILE format version 4 (§2.6)."""
    return (principal(client) + principal(server) + s16(enctype) + data(key)
            + b"".join(u32(t) for t in times) + u8(is_skey) + u32(flags)
            + u32(len(addresses)) + b"".join(u16(kind) + data(raw) for kind, raw in addresses)
            + u32(len(authdata)) + b"".join(s16(kind) + data(raw) for kind, raw in authdata)
            + data(ticket) + data(second_ticket))


def template(client=None, server=None, enctype=0, times=(0, 0, 0, 0), is_skey=0, flags=0, addresses=None,
             authdata=None, ticket=None, second_ticket=None, header=None):
    """A match template (§2.8); the header says which optional fields follow, unless given."""
    bits = ((client is not None) * 0x01 | (server is not None) * 0x02 | (enctype != 0) * 0x04
            | (ticket is not None) * 0x08 | (second_ticket is not None) * 0x10
            | (authdata is not None) * 0x20 | (addresses is not None) * 0x40)
    header = bits if header is None else header
    out = u32(header)
    if header & 0x01: out += principal(client)
    if header & 0x02: out += principal(server)
    if header & 0x04: out += s16(enctype) + data(b"\x22" * 16)
    out += b"".join(u32(t) for t in times) + u8(is_skey) + u32(flags)
    if header & 0x40: out += u32(len(addresses or ())) + b"".join(u16(k) + data(r) for k, r in addresses or ())
    if header & 0x20: out += u32(len(authdata or ())) + b"".join(s16(k) + data(r) for k, r in authdata or ())
    if header & 0x08: out += data(ticket or b"")
    if header & 0x10: out += data(second_ticket or b"")
    return out


def frame(opcode, args=b"", major=2, minor=0):
    """A request frame (§1.3): `u32 length`, version, opcode, arguments."""
    body = u8(major) + u8(minor) + u16(OPCODES[opcode] if isinstance(opcode, str) else opcode) + args
    return u32(len(body)) + body


def uuid_index(index):
    """A UUID the fuzz target reads as "the index-th one the store has" (FuzzUUIDs.swift)."""
    return b"\0" * 8 + struct.pack(">Q", index)


def fake_ticket(seed, length=48):
    """Stand-in ticket bytes: an ASN.1-looking prefix and filler (the daemon never decodes tickets)."""
    return (b"\x61\x82" + u16(length) + bytes((seed + i) & 0xFF for i in range(length)))[:length + 4]


def tgt(client, lifetime=36000):
    realm = realm_of(client)
    return credential(client, f"krbtgt/{realm}@{realm}[nt=2]", times=(NOW - 600, NOW - 600, NOW + lifetime, NOW + 604800),
                      flags=0x40E10000, ticket=fake_ticket(1))


def service_ticket(client, server):
    return credential(client, server, times=(NOW - 600, NOW, NOW + 36000, 0), flags=0x40A50000,
                      ticket=fake_ticket(len(server)))


def config_principal(key, extra=None):
    return (["krb5_ccache_conf_data", key] + ([extra] if extra else []), CONFIG_REALM)


def config_entry(client, key, value, extra=None):
    """A ccache configuration entry (§2.7): everything zero or empty but the value in the ticket."""
    return credential(client, config_principal(key, extra), enctype=0, key=b"", ticket=value.encode())


def kinit_credentials(client):
    realm = realm_of(client)
    return [config_entry(client, "pa_type", "2", f"krbtgt/{realm}@{realm}"), tgt(client)]


# --- The traces ------------------------------------------------------------------------------------

LINE = re.compile(r"^\s+c\d+ (\w+)\s*(.*?)\s*-> (\w+)\s*$")
FIELD = re.compile(r'(\w+)=(?:"([^"]*)"|\[([^\]]*)\]|(\S+))')


class TraceEncoder:
    """Turns the request lines of one block into frames, filling in what the log leaves out."""

    def __init__(self):
        self.title = ""
        self.principals = {}          # cache name -> default principal text
        self.existing = {}            # caches that exist after the lines so far -> principal
        self.default = None           # the primary name, once a line set it
        self.pending_stores = []      # credentials the next STOREs carry (fallback kinit)
        self.missing_service = None   # the last service a RETRIEVE did not find (kvno stores it next)
        self.cache_lookups = 0        # GET_CACHE_BY_UUID calls since the last GET_CACHE_UUID_LIST
        self.credential_lookups = 0   # GET_CRED_BY_UUID calls since the last GET_CRED_UUID_LIST
        self.config_stores = 0
        self.blind_retrieves = 0

    def client(self, cache):
        return self.principals.get(cache, "alice@KCMTEST.LOCAL")

    def setup_frames(self):
        """Frames that bring an empty store to the state the traced lines so far left (each block
        starts from there), with made-up credentials."""
        frames = [replace_frame(cache, client, kinit_credentials(client)) for cache, client in self.existing.items()]
        if self.default is not None:
            frames.append(frame("SET_DEFAULT_CACHE", name(self.default)))
        return frames

    def record(self, op, fields, status):
        """What a traced line did to the server's state, as far as the log tells."""
        if status != "OK":
            return
        cache = fields.get("name", "0")
        if op in ("REPLACE", "INITIALIZE") and "princ" in fields:
            self.existing[cache] = fields["princ"]
        elif op == "DESTROY":
            self.existing.pop(cache, None)
        elif op == "SET_DEFAULT_CACHE":
            self.default = cache

    def encode(self, op, fields, status):
        cache = fields.get("name", "0")
        if op in ("GET_DEFAULT_CACHE", "GEN_NEW", "NOOP"):
            return frame(op)
        if op == "GET_CACHE_UUID_LIST":
            self.cache_lookups = 0
            return frame(op)
        if op == "GET_CACHE_BY_UUID":
            self.cache_lookups += 1
            return frame(op, uuid_index(self.cache_lookups - 1))
        if op == "GET_CRED_UUID_LIST":
            self.credential_lookups = 0
            return frame(op, name(cache))
        if op == "GET_CRED_BY_UUID":
            self.credential_lookups += 1
            return frame(op, name(cache) + uuid_index(self.credential_lookups - 1))
        if op in ("GET_PRINCIPAL", "GET_KDC_OFFSET", "GET_CRED_LIST", "DESTROY", "SET_DEFAULT_CACHE"):
            return frame(op, name(cache))
        if op == "SET_KDC_OFFSET":
            return frame(op, name(cache) + s32(int(fields.get("offset", "0"))))
        if op == "INITIALIZE":
            self.principals[cache] = fields["princ"]
            self.pending_stores = kinit_credentials(fields["princ"])
            return frame(op, name(cache) + principal(fields["princ"]))
        if op == "REPLACE":
            client = fields.get("princ", self.client(cache))
            self.principals[cache] = client
            creds = kinit_credentials(client)
            return frame(op, name(cache) + s32(int(fields.get("offset", "0"))) + principal(client)
                         + u32(len(creds)) + b"".join(data(c) for c in creds))
        if op == "STORE":
            return frame(op, name(cache) + self.next_stored_credential(cache))
        if op == "RETRIEVE":
            return frame(op, name(cache) + self.retrieve_arguments(cache, fields, status))
        if op == "REMOVE_CRED":
            flags = int(fields.get("flags", "0"), 16)
            return frame(op, name(cache) + u32(flags) + template(client=self.client(cache), server=fields["mserver"]))
        raise ValueError(f"{self.title}: no encoding for {op}")

    def next_stored_credential(self, cache):
        client = self.client(cache)
        if self.pending_stores:
            return self.pending_stores.pop(0)
        if "config" in self.title:
            self.config_stores += 1
            return config_entry(client, "testkey", f"value{self.config_stores}")
        if self.missing_service:
            return service_ticket(client, self.missing_service)
        return tgt(client)

    def retrieve_arguments(self, cache, fields, status):
        if "mserver" not in fields:
            # Fallback mode logs no arguments: cycle through what kvno looks up.
            client = self.client(cache)
            realm = realm_of(client)
            choices = [
                (0x1, template(client=client, server=f"krb5_ccache_conf_data/start_realm@{CONFIG_REALM}")),
                (0x03000001, template(client=client, server=f"host/localhost@{realm}", times=(0, 0, NOW, 0))),
                (0x1, template(client=client, server=f"krbtgt/{realm}@{realm}[nt=2]")),
            ]
            flags, body = choices[self.blind_retrieves % len(choices)]
            self.blind_retrieves += 1
            return u32(flags) + body
        flags = int(fields["flags"], 16)
        times = tuple(int(t) for t in fields.get("mtimes", "0, 0, 0, 0").split(","))
        if status != "OK" and CONFIG_REALM not in fields["mserver"] and "krbtgt/" not in fields["mserver"]:
            self.missing_service = fields["mserver"]
        return u32(flags) + template(
            client=fields["mclient"], server=fields["mserver"], enctype=int(fields.get("menctype", "0")),
            times=times, header=int(fields.get("mheader", "0x3"), 16))


def parse_fields(text):
    fields = {}
    for match in FIELD.finditer(text):
        key, quoted, listed, bare = match.groups()
        fields[key] = quoted if quoted is not None else listed if listed is not None else bare
    return fields


def trace_blocks(path):
    """(mode, title, [(op, fields, status)]) per `=== ` block; the lines before the first block of a
    mode form a block of their own."""
    blocks, mode, title, lines = [], "", "startup", []
    with open(path) as traces:
        for raw in traces:
            if raw.startswith("## ") or raw.startswith("=== "):
                if lines:
                    blocks.append((mode, title, lines))
                lines = []
                if raw.startswith("## "):
                    mode, title = raw[3:].strip(), "startup"
                else:
                    title = raw[4:].split(": ")[0].strip()
                continue
            match = LINE.match(raw)
            if match:
                lines.append((match.group(1), parse_fields(match.group(2)), match.group(3)))
    if lines:
        blocks.append((mode, title, lines))
    return blocks


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


# --- Hand-made sessions: what the traces never send ------------------------------------------------

ALICE = "alice@KCMTEST.LOCAL"
REALM = "KCMTEST.LOCAL"
TGS = f"krbtgt/{REALM}@{REALM}[nt=2]"


def replace_frame(cache, client, creds, offset=0):
    return frame("REPLACE", name(cache) + s32(offset) + principal(client) + u32(len(creds))
                 + b"".join(data(c) for c in creds))


def every_field_credential(server=f"HTTP/www.kcmtest.local@{REALM}", is_skey=1):
    return credential(ALICE, server, enctype=17, key=b"\x33" * 16, times=(NOW, NOW, NOW + 3600, NOW + 7200),
                      is_skey=is_skey, flags=0x50A00000, addresses=[(2, b"\x7f\x00\x00\x01"), (24, b"\0" * 15 + b"\1")],
                      authdata=[(1, b"\x30\x03\x02\x01\x00"), (-128, b"pac")], ticket=fake_ticket(7),
                      second_ticket=fake_ticket(9, 20))


def hand_sessions():
    """(name, plan bytes, frames) for each hand-made seed."""
    full = every_field_credential()
    host = service_ticket(ALICE, f"host/localhost@{REALM}[nt=3]")
    referral = service_ticket(ALICE, "cifs/fs.kcmtest.local@")
    start = replace_frame("0", ALICE, kinit_credentials(ALICE) + [host, full, referral])
    sessions = []

    sessions.append(("hand-store-and-supersede", PLAN_PLAIN, [
        frame("INITIALIZE", name("0") + principal(ALICE)),
        frame("STORE", name("0") + tgt(ALICE)),
        frame("STORE", name("0") + host),
        frame("STORE", name("0") + host),  # the same service again: supersedes
        frame("STORE", name("0") + config_entry(ALICE, "refresh_time", "1795309244")),
        frame("STORE", name("0") + config_entry(ALICE, "refresh_time", "1795312844")),
        frame("STORE", name("nope") + host),
        frame("GET_CRED_LIST", name("0")),
    ]))
    sessions.append(("hand-replace-every-field", PLAN_PLAIN, [
        start,
        replace_frame("0", ALICE, [], offset=-3600),
        replace_frame("0:7", "bob@OTHER.REALM", [full, full], offset=7200),
        frame("GET_KDC_OFFSET", name("0:7")),
        frame("GET_CRED_LIST", name("0:7")),
        frame("GET_PRINCIPAL", name("0:7")),
    ]))
    sessions.append(("hand-retrieve-templates", PLAN_PLAIN, [
        start,
        frame("RETRIEVE", name("0") + u32(0x1) + template(client=ALICE, server=TGS)),
        frame("RETRIEVE", name("0") + u32(0x03000001) + template(client=ALICE, server=f"host/localhost@{REALM}",
                                                                 times=(0, 0, NOW, 0))),
        # Every optional field present, every match flag set.
        frame("RETRIEVE", name("0") + u32(0xFFC00001) + template(
            client=ALICE, server=f"HTTP/www.kcmtest.local@{REALM}", enctype=17, times=(NOW, NOW, NOW + 3600, NOW + 7200),
            is_skey=1, flags=0x50A00000, addresses=[(2, b"\x7f\x00\x00\x01")], authdata=[(1, b"\x30\x03\x02\x01\x00"), (-128, b"pac")],
            ticket=fake_ticket(7), second_ticket=fake_ticket(9, 20))),
        frame("RETRIEVE", name("0") + u32(0x80000001) + template(client="alice@", server="host/localhost@")),
        frame("RETRIEVE", name("0") + u32(0x20000001) + template(server="cifs/fs.kcmtest.local@ELSEWHERE")),
        frame("RETRIEVE", name("0") + u32(0x40000001) + template(client=ALICE, server=TGS, enctype=18)),
        frame("RETRIEVE", name("0") + u32(0x1) + template(header=0)),
        # Heimdal's habit: a second ticket without its header bit.
        frame("RETRIEVE", name("0") + u32(0x00800001) + template(server=TGS, header=0x02) + data(b"")),
        frame("RETRIEVE", name("missing") + u32(0x1) + template(client=ALICE)),
    ]))
    sessions.append(("hand-remove-cred", PLAN_PLAIN, [
        start,
        frame("REMOVE_CRED", name("0") + u32(0) + template(client=ALICE, server=config_principal("pa_type", f"krbtgt/{REALM}@{REALM}"))),
        frame("REMOVE_CRED", name("0") + u32(0x002 | 0x040) + template(server=f"host/localhost@{REALM}")),  # MIT 1.13-1.19 bits
        frame("REMOVE_CRED", name("0") + u32(0x80000000) + template(client="alice@WRONG", server="cifs/fs.kcmtest.local@WRONG")),
        frame("REMOVE_CRED", name("0") + u32(0x00400000) + template(is_skey=1)),
        frame("REMOVE_CRED", name("0") + u32(0) + template(header=0)),  # removes everything
        frame("GET_CRED_UUID_LIST", name("0")),
    ]))
    sessions.append(("hand-uuid-lookups", PLAN_PLAIN, [
        start,
        replace_frame("0:1", "carol@KCMTEST.LOCAL", [tgt("carol@KCMTEST.LOCAL")]),
        frame("GET_CACHE_UUID_LIST"),
        frame("GET_CACHE_BY_UUID", uuid_index(0)),
        frame("GET_CACHE_BY_UUID", uuid_index(1)),
        frame("GET_CACHE_BY_UUID", b"\x01" * 16),
        frame("GET_CRED_UUID_LIST", name("0")),
        frame("GET_CRED_BY_UUID", name("0") + uuid_index(0)),
        frame("GET_CRED_BY_UUID", name("0") + uuid_index(4)),
        frame("GET_CRED_BY_UUID", name("0") + b"\xff" * 16),
        frame("GET_CRED_BY_UUID", name("0:1") + uuid_index(0)),
        frame("DESTROY", name("0:1")),
        frame("GET_CACHE_BY_UUID", uuid_index(1)),
    ]))
    # Heimdal's kinit (kcm-protocol.md §14): a temporary cache moved into place.
    sessions.append(("hand-heimdal-kinit-move", PLAN_PLAIN, [
        frame("GET_DEFAULT_CACHE"),
        frame("GEN_NEW"),
        frame("INITIALIZE", name("0:1") + principal(ALICE)),
        frame("SET_KDC_OFFSET", name("0:1") + s32(-42)),
        frame("STORE", name("0:1") + tgt(ALICE)),
        frame("MOVE_CACHE", name("0:1") + name("0")),
        frame("DESTROY", name("0:1")),
        frame("SET_DEFAULT_CACHE", name("0")),
        frame("SET_FLAGS", name("0") + u32(0)),
        frame("GET_KDC_OFFSET", name("0")),
        frame("SET_DEFAULT_CACHE", name("0:2")),
        frame("INITIALIZE", name("0:2") + principal("bob@KCMTEST.LOCAL")),
        frame("MOVE_CACHE", name("0:2") + name("0")),  # onto an existing cache, moving the primary
        frame("MOVE_CACHE", name("0") + name("0")),
        frame("MOVE_CACHE", name("0") + name("")),
        frame("MOVE_CACHE", name("gone") + name("0")),
        frame("GET_DEFAULT_CACHE"),
    ]))
    sessions.append(("hand-status-and-unknown-opcodes", PLAN_PLAIN, [
        frame("NOOP"),
        frame("CCACHED_STATUS"),
        replace_frame("0", ALICE, kinit_credentials(ALICE)),
        frame("CCACHED_STATUS"),
        frame(0x5001),
        frame("GET_NAME", name("0")),
        frame("RESOLVE", name("0")),
        frame("CHOWN", name("0") + u32(1000) + u32(1000)),
        frame("CHMOD", name("0") + u16(0o600)),
        frame("GET_INITIAL_TICKET", name("0") + u8(0) + s16(18) + data(b"")),
        frame("GET_TICKET", name("0") + u32(0) + s32(18) + principal(f"host/localhost@{REALM}")),
        frame("ADD_NTLM_CRED"), frame("HAVE_NTLM_CRED"), frame("DEL_NTLM_CRED"),
        frame("DO_NTLM_AUTH"), frame("GET_NTLM_USER_LIST"),
        frame(13000), frame(0xFFFF),
        frame("GET_DEFAULT_CACHE", major=1),
        frame("GET_DEFAULT_CACHE", minor=7),
        u32(0),  # an empty body
        u32(2) + b"\x02\x00",  # no opcode
    ]))
    # ccached's own requests (protocol.md). The tickets' times are the traces', long past by now, so
    # CCACHED_RENEW decides without asking a KDC: the fuzz target never talks to one. The first
    # RENEW starts the renewal worker, which must be gone when the input ends (the target checks).
    sessions.append(("hand-ccached-opcodes", PLAN_PLAIN, [
        frame("CCACHED_RENEW", name("")),
        replace_frame("0", ALICE, kinit_credentials(ALICE)),
        frame("CCACHED_RENEW", name("")),
        frame("CCACHED_RENEW", name("0")),
        frame("CCACHED_RENEW", name("gone")),
        frame("CCACHED_RENEW"),  # no name at all: malformed
        frame("CCACHED_RENEWAL_STATE"),
        frame("CCACHED_WATCH", u32(0) + u32(0) + u32(0) + u32(0) + u32(0)),  # epoch 0, after 0, timeout 0
        frame("CCACHED_ATTACH"),
        frame("CCACHED_DETACH"),
        frame("CCACHED_DETACH"),
        frame("CCACHED_STATUS"),
        frame("CCACHED_STOP"),
        frame("GET_DEFAULT_CACHE"),
    ]))
    names_session = [
        frame("INITIALIZE", name("") + principal(ALICE)),
        frame("INITIALIZE", name("x" * 4097) + principal(ALICE)),
        frame("INITIALIZE", name("x" * 4096) + principal(ALICE)),
        frame("SET_DEFAULT_CACHE", name("")),
        frame("SET_DEFAULT_CACHE", name("KCM:\xff")),
        frame("GET_PRINCIPAL", b"0"),  # no NUL
        frame("REPLACE", name("") + s32(0) + principal(ALICE) + u32(0)),
        frame("DESTROY", name("x" * 4096)),
    ]
    sessions.append(("hand-cache-names", PLAN_PLAIN, names_session))
    sessions.append(("hand-malformed-arguments", PLAN_PLAIN, [
        frame("INITIALIZE", name("0") + s32(1) + u32(0xFFFFFFFF) + data(b"R")),
        frame("INITIALIZE", name("0") + s32(1) + u32(1) + u32(100) + b"short"),
        frame("INITIALIZE", name("0") + principal(ALICE)),
        frame("STORE", name("0") + tgt(ALICE)[:-7]),
        frame("STORE", name("0") + principal(ALICE) + principal(TGS) + s16(18) + data(b"k") + b"\0" * 17
              + u32(0) + u32(0x7FFFFFFF)),  # address count no body could hold
        frame("REPLACE", name("0") + s32(0) + principal(ALICE) + u32(0x40000000)),
        frame("REPLACE", name("0") + s32(0) + principal(ALICE) + u32(1) + u32(0xFFFF) + tgt(ALICE)),
        frame("REPLACE", name("0") + s32(0) + principal(ALICE) + u32(1) + data(tgt(ALICE) + b"trailing")),
        frame("RETRIEVE", name("0") + u32(1) + u32(0x7F)),
        frame("RETRIEVE", name("0") + u32(1) + template(client=ALICE, header=0x21) + u32(3)),
        frame("REMOVE_CRED", name("0") + u32(0)),
        frame("GET_CRED_BY_UUID", name("0") + b"\x00" * 15),
        frame("GET_CACHE_BY_UUID", b"\x00" * 3),
        frame("SET_KDC_OFFSET", name("0") + b"\x00\x01"),
        frame("MOVE_CACHE", name("0")),
    ]))
    # Limits of the fuzz store (FuzzSession.swift): 8 caches, 16 credentials each, 16 KiB in all.
    sessions.append(("hand-limit-caches", PLAN_PLAIN,
                     [frame("INITIALIZE", name(f"0:{n}") + principal(ALICE)) for n in range(1, 11)]
                     + [replace_frame("0:99", ALICE, []), frame("MOVE_CACHE", name("0:1") + name("0:50")),
                        frame("GET_CACHE_UUID_LIST"), frame("CCACHED_STATUS")]))
    sessions.append(("hand-limit-credentials", PLAN_PLAIN,
                     [frame("INITIALIZE", name("0") + principal(ALICE))]
                     + [frame("STORE", name("0") + service_ticket(ALICE, f"host/h{n}@{REALM}")) for n in range(18)]
                     + [frame("STORE", name("0") + service_ticket(ALICE, f"host/h3@{REALM}")),
                        replace_frame("0:1", ALICE, [service_ticket(ALICE, f"ldap/l{n}@{REALM}") for n in range(17)]),
                        frame("GET_CRED_UUID_LIST", name("0"))]))
    big = [credential(ALICE, f"HTTP/big{n}@{REALM}", times=(NOW, NOW, NOW + 3600, 0), ticket=bytes([n]) * 4000)
           for n in range(5)]
    sessions.append(("hand-limit-bytes", PLAN_PLAIN,
                     [frame("INITIALIZE", name("0") + principal(ALICE))]
                     + [frame("STORE", name("0") + c) for c in big]
                     + [replace_frame("0:1", ALICE, big[:2]), frame("CCACHED_STATUS")]))
    expired = [credential(ALICE, f"host/old{n}@{REALM}", times=(1000, 1000, 2000 + n, 0), ticket=fake_ticket(n))
               for n in range(3)]
    purge_frames = [
        replace_frame("0", ALICE, expired + [tgt(ALICE)]),
        replace_frame("0:1", ALICE, [config_entry(ALICE, "fast_avail", "yes", f"krbtgt/{REALM}@{REALM}")]),
        replace_frame("0:2", ALICE, expired[:1]),
        replace_frame("0:3", ALICE, [credential(ALICE, f"host/never@{REALM}", times=(0, 0, 0, 0))]),
        frame("GET_CACHE_UUID_LIST"),
        frame("GET_CRED_LIST", name("0")),
        frame("GET_CRED_LIST", name("0:1")),
        frame("GET_CACHE_UUID_LIST"),
        frame("GET_CRED_LIST", name("0:2")),
        frame("CCACHED_STATUS"),
    ]
    sessions.append(("hand-purge-every-frame", bytes([0x20, 0x01]), purge_frames))
    sessions.append(("hand-purge-random", bytes([0x30, 0x05]), purge_frames))
    # 512-byte request limit: a large STORE is drained and refused, the next request still answered.
    sessions.append(("hand-oversized-small-limit", bytes([0x80, 0x00]), [
        frame("INITIALIZE", name("0") + principal(ALICE)),
        frame("STORE", name("0") + big[0][:600]),
        frame("GET_DEFAULT_CACHE"),
        u32(0x00010000) + b"\0" * 16,  # declared 64 KiB, body cut short: still draining at the end
    ]))
    # The same with a stranger sending every other frame, in reads that span frames: the stranger's
    # frames, oversized or not, are refused unread, and the owner's still answered in step.
    sessions.append(("hand-oversized-stranger-spanning", bytes([0xCA, 0x03]), [
        frame("INITIALIZE", name("0") + principal(ALICE)),
        frame("STORE", name("0") + big[0][:600]),
        frame("STORE", name("0") + big[1][:600]),
        frame("GET_DEFAULT_CACHE"),
        frame("STORE", name("0") + host),
        frame("GET_CRED_LIST", name("0")),
        frame("CCACHED_STATUS"),
        u32(0x00010000) + b"\0" * 16,
    ]))
    sessions.append(("hand-oversized-never-ends", PLAN_PLAIN, [
        frame("GET_DEFAULT_CACHE"),
        u32(0xFFFFFFFF) + b"\x02\x00\x00\x14",
    ]))
    return sessions


def main():
    traces = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_TRACES
    output = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_OUTPUT
    os.makedirs(output, exist_ok=True)
    for stale in os.listdir(output):
        os.remove(os.path.join(output, stale))

    seeds = []
    by_mode = {}
    encoders = {}
    for number, (mode, title, lines) in enumerate(trace_blocks(traces)):
        encoder = encoders.setdefault(mode, TraceEncoder())
        encoder.title = title
        setup = encoder.setup_frames()
        frames = []
        for op, fields, status in lines:
            frames.append(encoder.encode(op, fields, status))
            encoder.record(op, fields, status)
        seeds.append((f"trace-{number:02d}-{slug(title)}", PLAN_PLAIN, setup + frames))
        by_mode.setdefault(mode, []).extend(frames)
    for number, (mode, frames) in enumerate(by_mode.items()):
        seeds.append((f"trace-all-{number}-{slug(mode)}", PLAN_PLAIN, frames))
    # The first mode's whole run again, cut into reads differently, with refused peers, and purged.
    normal = next(iter(by_mode.values()))
    seeds.append(("trace-all-0-small-reads", bytes([0x02, 0x2A]), normal))
    seeds.append(("trace-all-0-single-bytes", bytes([0x01, 0x00]), normal))
    seeds.append(("trace-all-0-whole-runs", bytes([0x40, 0x00]), normal))
    seeds.append(("trace-all-0-large-reads-spanning-refused-at-random", bytes([0x4F, 0x11]), normal))
    seeds.append(("trace-all-0-refused-every-other", bytes([0x08, 0x00]), normal))
    seeds.append(("trace-all-0-refused-at-random-purged", bytes([0x1F, 0x07]), normal))
    seeds.extend(hand_sessions())

    total = 0
    for seed_name, plan, frames in seeds:
        content = plan + b"".join(frames)
        total += len(content)
        with open(os.path.join(output, seed_name), "wb") as seed:
            seed.write(content)
    print(f"{len(seeds)} seeds, {total} bytes, in {output}")


if __name__ == "__main__":
    main()
