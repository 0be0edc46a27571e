#!/usr/bin/env python3
"""Writes the committed seed corpora (fuzz/corpus/<target>/), one file per seed.

Seeds are the packets a socket.io-client v4 app sends and receives for the chat
contract (PROTOCOL.md), as they appear on the wire: event payloads for `validate`,
WebSocket/polling frames for `sio_codec`, tokens and handshakes for `auth`. Rerun after
editing: `python3 fuzz/seeds/make.py`.
"""
import base64, hashlib, hmac, json, os, pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "corpus"
CHAT = "0192f1d2-7c1e-7a40-9d1a-3f4b5c6d7e8f"
MSG = "0192f1d2-7c1f-7b00-8e2a-1a2b3c4d5e6f"
CID = "2f1b7c3e-9a4d-4e8f-b1c2-d3e4f5a6b7c8"
NOW = 1_700_000_000
SECRET = b"fuzz-secret"

def write(target, name, data):
    path = ROOT / target
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_bytes(data if isinstance(data, bytes) else data.encode())

def j(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)

# --- validate: "<event>\n<payload json>", or "http:<call>\n<params…>\n<body>" ---------
events = {
    "join": ("room:join", {"chatId": CHAT}),
    "leave": ("room:leave", {"chatId": CHAT}),
    "send": ("message:send", {"chatId": CHAT, "body": "hi 👋", "clientId": CID}),
    "send-image": ("message:send", {"chatId": CHAT, "body": "https://example.com/a.png", "clientId": CID, "kind": "image"}),
    "typing-start": ("typing:start", {"chatId": CHAT}),
    "typing-stop": ("typing:stop", {"chatId": CHAT}),
    "read": ("receipt:read", {"chatId": CHAT, "messageId": MSG}),
    "ping": ("presence:ping", {}),
    "dm": ("chat:create", {"kind": "dm", "memberIds": ["bob"]}),
    "group": ("chat:create", {"kind": "group", "memberIds": ["bob", "carol", "bob"], "title": "team"}),
    "sync": ("messages:sync", {"chatId": CHAT, "afterSeq": 0, "limit": 50}),
    "sync-bad": ("messages:sync", {"chatId": CHAT, "afterSeq": -1, "limit": 201}),
    "send-blank": ("message:send", {"chatId": CHAT, "body": " \u2003\n", "clientId": CID}),
    "send-wrong-types": ("message:send", {"chatId": 7, "body": ["x"], "clientId": None}),
}
for name, (event, payload) in events.items():
    write("validate", name, f"{event}\n{j(payload)}")
write("validate", "ping-null", "presence:ping\n")
write("validate", "unknown", "chat:explode\n[1,2,3]")
write("validate", "http-list", "http:list\n")
write("validate", "http-create", "http:create\n" + j({"kind": "group", "memberIds": ["a"], "title": "t"}))
write("validate", "http-history", f"http:history\n{CHAT}\n\n10\n50")
write("validate", "http-history-both", f"http:history\n{CHAT}\n3\n10\n")
write("validate", "http-rename", f"http:rename\n{CHAT}\n" + j({"title": "new name"}))
write("validate", "http-add", f"http:add\n{CHAT}\n" + j({"userId": "dave"}))
write("validate", "http-remove", f"http:remove\n{CHAT}\ndave")

# --- sio_codec: frames as socket.io-client v4 and the server put them on the wire ----
frames = {
    "open": '0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}',
    "ping": "2", "pong": "3", "probe": "2probe", "upgrade": "5", "noop": "6", "close": "1",
    "connect-auth": "40" + j({"token": "Bearer a.b.c", "autoJoin": True}),
    "connect-nsp": "40/api/v1/sockets," + j({"token": "x"}),
    "connect-ok": '40{"sid":"edwsuVsbGsnVx7Z2AAAD"}',
    "connect-error": "44" + j({"message": "UNAUTHORIZED", "data": {"code": "UNAUTHORIZED", "message": "token expired", "correlationId": CID}}),
    "event-ack": "421" + j(["message:send", {"chatId": CHAT, "body": "hi", "clientId": CID}]),
    "event-nsp": "42/api/v1/sockets,7" + j(["room:join", {"chatId": CHAT}]),
    "event-noack": "42" + j(["typing:start", {"chatId": CHAT}]),
    "ack": "431" + j([{"ok": True, "data": {"clientId": CID, "serverId": MSG, "seq": 1, "createdAt": "2024-01-01T00:00:00.000Z"}}]),
    "ack-error": "432" + j([{"ok": False, "error": "FORBIDDEN", "message": "not a member", "correlationId": CID}]),
    "server-event": "42" + j(["message:new", {"id": MSG, "chatId": CHAT, "seq": 1, "senderId": "alice", "body": "hi", "kind": "text", "clientId": CID, "createdAt": "2024-01-01T00:00:00.000Z"}]),
    "binary-event": '451-["upload",{"_placeholder":true,"num":0}]',
    "disconnect": "41", "disconnect-nsp": "41/api/v1/sockets,",
    "lone-surrogate": '42["message:send",{"body":"\\ud800"}]',
    "polling-batch": "\x1e".join(["40", "42" + j(["presence:ping", {}]), "2"]),
}
for name, frame in frames.items():
    write("sio_codec", name, frame)

# --- auth: mode byte + input ----------------------------------------------------------
def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def sign(header, claims, secret=SECRET):
    signing = f"{b64(j(header).encode())}.{b64(j(claims).encode())}"
    sig = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(sig)}"

hs = {"alg": "HS256", "typ": "JWT"}
good = sign(hs, {"sub": "alice", "exp": NOW + 3600})
# Mode 0 must never accept anything: its seeds are well formed but signed with another secret.
forged = sign(hs, {"sub": "alice", "exp": NOW + 3600}, secret=b"another-secret")
write("auth", "raw-good-looking", b"\x00" + forged.encode())
write("auth", "raw-bearer", b"\x00Bearer " + forged.encode())
write("auth", "raw-alg-none", b"\x00" + f"{b64(j({'alg':'none'}).encode())}.{b64(j({'sub':'a','exp':NOW+60}).encode())}.".encode())
write("auth", "raw-non-utf8", b"\x00Bearer \xff\xfe.\xc3\x28.\x80")
write("auth", "shake-auth-wins", b"\x01" + "\n".join([j({"token": good, "autoJoin": True}), "Bearer " + sign(hs, {"sub": "bob", "exp": NOW + 60}), "carol"]).encode())
write("auth", "shake-header", b"\x01" + "\n".join([j({"autoJoin": True}), "Bearer " + good, ""]).encode())
write("auth", "shake-query", b"\x01" + "\n".join(["null", "  ", good]).encode())
write("auth", "shake-bad-auth", b"\x01" + "\n".join([j({"token": 42}), "Bearer " + good, good]).encode())
claims = {
    "sign-good": (hs, {"sub": "alice", "exp": NOW + 3600}),
    "sign-admin": (hs, {"sub": "root", "role": "admin", "exp": NOW + 3600, "iat": NOW}),
    "sign-expired": (hs, {"sub": "alice", "exp": NOW - 31}),
    "sign-nbf": (hs, {"sub": "alice", "exp": NOW + 3600, "nbf": NOW + 31}),
    "sign-no-sub": (hs, {"exp": NOW + 3600}),
    "sign-id-claims": (hs, {"id": "bob", "userId": "carol", "exp": NOW + 3600.5}),
    "sign-rs256": ({"alg": "RS256", "typ": "JWT"}, {"sub": "alice", "exp": NOW + 3600}),
    "sign-none": ({"alg": "none"}, {"sub": "alice", "exp": NOW + 3600}),
}
for name, (header, body) in claims.items():
    write("auth", name, b"\x02" + f"{j(header)}\n{j(body)}".encode())
