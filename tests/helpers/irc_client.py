"""A scripted IRC user on Python's `irc` library (Debian's python3-irc), for tests/irc_test.ts.

Usage: irc_client.py HOST PORT NICK PASSWORD PEER

Registers as NICK, waits to be in #lobby, says a line there and sends PEER a direct
message; once PEER has answered both ways, sends an unknown command and an over-long
line (the library refuses to send one: it goes straight to the socket), expects their
numerics, checks the server still answers a PING, and quits. Every event is printed as
one JSON line on stdout; the exit status is 0 when the whole script ran, 1 otherwise.
"""

import json
import sys
import time

import irc.client

host, port, nick, password, peer = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
state = {"pub": False, "dm": False, "garbage_sent": False, "errors": set(), "done": False}


def emit(**fields):
    print(json.dumps(fields), flush=True)


def on_event(connection, event):
    kind = event.type
    if kind in ("all_raw_messages", "ping"):
        return
    text = event.arguments[-1] if event.arguments else ""
    emit(event=kind, source=str(event.source or ""), target=str(event.target or ""), text=str(text))
    if kind == "join" and event.target == "#lobby" and irc.client.NickMask(event.source).nick == nick:
        connection.privmsg("#lobby", "hello from python")
        connection.privmsg(peer, "dm from python")
    elif kind == "pubmsg" and event.target == "#lobby" and text == "hello from chat":
        state["pub"] = True
    elif kind == "privmsg" and text == "dm from chat":
        state["dm"] = True
    elif kind in ("unknowncommand", "417"):
        state["errors"].add(kind)
        if state["errors"] == {"unknowncommand", "417"}:
            connection.ping("still-here")
    elif kind == "pong" and text == "still-here":
        state["done"] = True
        connection.quit("done")
    if state["pub"] and state["dm"] and not state["garbage_sent"]:
        state["garbage_sent"] = True
        connection.send_raw("FROBNICATE now")
        connection.socket.send(b"PRIVMSG #lobby :" + b"x" * 2000 + b"\r\n")


reactor = (getattr(irc.client, "Reactor", None) or irc.client.IRC)()
reactor.add_global_handler("all_events", on_event)
try:
    reactor.server().connect(host, port, nick, password=password)
except irc.client.ServerConnectionError as err:
    emit(event="connect_failed", text=str(err))
    sys.exit(1)

deadline = time.monotonic() + 60
while not state["done"] and time.monotonic() < deadline:
    reactor.process_once(0.2)
emit(event="finished", text="ok" if state["done"] else "timed out")
sys.exit(0 if state["done"] else 1)
