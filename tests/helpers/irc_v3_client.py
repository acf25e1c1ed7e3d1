"""A scripted IRC user on Python's `irc` library (python3-irc) for tests/irc_v3_test.ts:
SASL PLAIN before registration, AWAY, WHOIS of an away user, CHATHISTORY.

Usage: irc_v3_client.py HOST PORT ACCOUNT PASSWORD PEER

Connects without registering (the library's NICK and USER are held back), negotiates
`CAP REQ sasl`, authenticates with AUTHENTICATE PLAIN, then `CAP END` and registers.
Once welcomed: sets itself away, asks WHOIS PEER (expecting PEER's away message), asks
`CHATHISTORY LATEST #lobby * 5` (no batch capability: the library takes tags for a
command, so it asks for none and gets the lines unwrapped), and quits once the history's
last line came. Every event is printed as one JSON line on stdout; the exit status is 0
when the whole script ran, 1 otherwise.
"""

import base64
import json
import sys
import time

import irc.client

host, port, account, password, peer = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
state = {"done": False, "welcomed": False}


def emit(**fields):
    print(json.dumps(fields), flush=True)


def on_event(connection, event):
    kind = event.type
    if kind in ("all_raw_messages", "ping"):
        return
    text = event.arguments[-1] if event.arguments else ""
    emit(event=kind, source=str(event.source or ""), target=str(event.target or ""),
         args=[str(a) for a in event.arguments], text=str(text))
    if kind == "cap" and len(event.arguments) >= 2 and event.arguments[0] == "ACK":
        connection.send_raw("AUTHENTICATE PLAIN")
    elif kind == "authenticate" and event.target == "+":
        response = base64.b64encode(f"\0{account}\0{password}".encode()).decode()
        connection.send_raw(f"AUTHENTICATE {response}")
    elif kind == "903":
        connection.cap("END")
        connection.nick(account)
        connection.user(account, account)
    elif kind in ("904", "905", "906"):
        connection.quit("sasl failed")
    elif kind == "welcome":
        state["welcomed"] = True
        connection.send_raw("AWAY :fishing")
    elif kind == "nowaway":
        connection.whois([peer])
    elif kind == "endofwhois":
        connection.send_raw("CHATHISTORY LATEST #lobby * 5")
    elif kind == "pubmsg" and text == "history line 2":
        state["done"] = True
        connection.quit("done")


reactor = (getattr(irc.client, "Reactor", None) or irc.client.IRC)()
reactor.add_global_handler("all_events", on_event)
server = reactor.server()
# Connect without registering: NICK and USER wait for the end of SASL.
held = (server.nick, server.user)
server.nick = lambda *args: None
server.user = lambda *args: None
try:
    server.connect(host, port, account)
except irc.client.ServerConnectionError as err:
    emit(event="connect_failed", text=str(err))
    sys.exit(1)
server.nick, server.user = held
server.cap("LS", "302")
server.cap("REQ", "sasl")

deadline = time.monotonic() + 60
while not state["done"] and time.monotonic() < deadline:
    reactor.process_once(0.2)
emit(event="finished", text="ok" if state["done"] else "timed out")
sys.exit(0 if state["done"] else 1)
