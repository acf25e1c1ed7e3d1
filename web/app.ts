/**
 * The browser client: log in or register, rooms with unread counts, a room's history
 * loaded as you scroll up, direct messages, who is online, join / leave / create rooms,
 * topics, receipts on your direct messages, block and unblock, notifications of direct
 * messages and mentions while the tab is in the background. Bundled by scripts/build_web.ts into server/web_assets.ts. Every text from
 * the server goes into the page as text (web/dom.ts), never as HTML.
 *
 * @module
 */

import { nameKey } from "../protocol/names.ts";
import {
  type ChatMessage,
  ChatSocket,
  type Header,
  type LinkState,
  RequestError,
} from "./chat_socket.ts";
import { byId, el } from "./dom.ts";
import { forget, leaveNote, remember, remembered, takeNote } from "./remember.ts";
import { FilesView } from "./files.ts";

/** Messages asked for per history page. */
const HISTORY_PAGE = 50;
/** Load older messages when scrolled this close to the top, in pixels. */
const NEAR_TOP_PX = 80;
/**
 * Seconds the session token of a login NOT remembered works: only for reconnects, renewed
 * while connected (web/chat_socket.ts), so a token left behind is soon worthless.
 */
const SHORT_TOKEN_TTL_SEC = 3600;

/** A room or a direct conversation. */
interface Conversation {
  kind: "room" | "dm";
  /** The room's name or the other person's nick, as the server spells it. */
  name: string;
  topic: string;
  unread: number;
  /** Messages by id, and their ids in order. */
  messages: Map<number, ChatMessage>;
  /** Whether older messages than those held may exist on the server. */
  more: boolean;
  /** Whether the first page of history was asked for. */
  loaded: boolean;
  loading: boolean;
}

/** The page's state. */
const state = {
  chat: null as ChatSocket | null,
  me: "",
  rooms: new Map<string, Conversation>(),
  dms: new Map<string, Conversation>(),
  online: new Map<string, string>(),
  active: null as Conversation | null,
  /** What became of our direct messages, by id: sent, delivered or read. */
  receipts: new Map<number, ReceiptStatus>(),
  /** Nicks we block, by key. */
  blocked: new Map<string, string>(),
};

type ReceiptStatus = "sent" | "delivered" | "read";
const RECEIPT_RANK: Record<ReceiptStatus, number> = { sent: 0, delivered: 1, read: 2 };
const RECEIPT_TEXT: Record<ReceiptStatus, string> = {
  sent: "✓ sent",
  delivered: "✓✓ delivered",
  read: "✓✓ read",
};

function conversation(kind: "room" | "dm", name: string): Conversation {
  const map = kind === "room" ? state.rooms : state.dms;
  const key = nameKey(name);
  let found = map.get(key);
  if (found === undefined) {
    found = {
      kind,
      name,
      topic: "",
      unread: 0,
      messages: new Map(),
      more: true,
      loaded: false,
      loading: false,
    };
    map.set(key, found);
  }
  return found;
}

/** Files in direct conversations (web/files.ts). */
const files = new FilesView({
  activeDm: () => state.active?.kind === "dm" ? state.active.name : null,
  offered: (nick, name, file) => {
    const target = conversation("dm", nick);
    if (target !== state.active) target.unread++;
    renderSidebar();
    notifyOffer(nick, name, file);
  },
  notice: showNotice,
});

// ---------------------------------------------------------------- login

function wsUrl(): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

const handlers = {
  event: onEvent,
  state: showLinkState,
  resumed: (reply: Header) => void refreshAfterResume(reply),
};

async function logIn(register: boolean): Promise<void> {
  const nick = byId<HTMLInputElement>("login-nick").value.trim();
  const password = byId<HTMLInputElement>("login-password").value;
  const error = byId("login-error");
  error.textContent = "";
  if (!byId<HTMLFormElement>("login-form").reportValidity()) return;
  setBusy(true);
  try {
    const remembering = byId<HTMLInputElement>("login-remember").checked;
    const { chat, login } = await ChatSocket.open(
      wsUrl(),
      nick,
      { password },
      register,
      handlers,
      remembering ? {} : { tokenTtl: SHORT_TOKEN_TTL_SEC },
    );
    state.chat = chat;
    files.attach(chat);
    state.me = String(login.nick ?? nick);
    byId<HTMLInputElement>("login-password").value = "";
    if (remembering && chat.token !== null) {
      remember(state.me, chat.token);
    }
    await startSession(login);
  } catch (err) {
    error.textContent = err instanceof RequestError ? explainLogin(err) : String(err);
  } finally {
    setBusy(false);
  }
}

/** Logs in with the remembered session token, if there is one. */
async function resumeRemembered(): Promise<void> {
  const note = takeNote();
  if (note !== null) byId("login-error").textContent = note;
  const saved = remembered();
  if (saved === null) return;
  byId<HTMLInputElement>("login-nick").value = saved.nick;
  setBusy(true);
  try {
    const { chat, login } = await ChatSocket.open(
      wsUrl(),
      saved.nick,
      { token: saved.token },
      false,
      handlers,
    );
    state.chat = chat;
    files.attach(chat);
    state.me = String(login.nick ?? saved.nick);
    await startSession(login);
  } catch (err) {
    if (err instanceof RequestError && err.code !== "unreachable") forget();
    byId("login-error").textContent = err instanceof RequestError
      ? `Log in again: ${explainLogin(err)}`
      : String(err);
  } finally {
    setBusy(false);
  }
}

/** Logs out (`everywhere`: every session and token of the account) and starts over. */
async function logOut(everywhere: boolean): Promise<void> {
  forget();
  files.close();
  const chat = state.chat;
  state.chat = null;
  await chat?.logout(everywhere);
  location.reload();
}

function explainLogin(err: RequestError): string {
  if (err.code === "no_account") return "No account with that nick: register first.";
  return err.message;
}

function setBusy(busy: boolean): void {
  for (const id of ["login-button", "register-button"]) {
    byId<HTMLButtonElement>(id).disabled = busy;
  }
}

async function startSession(login: Header): Promise<void> {
  byId("login-view").hidden = true;
  byId("chat-view").hidden = false;
  byId("me-nick").textContent = state.me;
  const rooms = (login.rooms as string[] | undefined) ?? [];
  for (const room of rooms) conversation("room", room);
  renderSidebar();
  const first = rooms.includes("lobby") ? "lobby" : rooms[0];
  if (first !== undefined) await open(conversation("room", first));
  else renderConversation();
  await Promise.all([refreshRooms(), refreshOnline(), refreshBlocks()]);
  showNotifyButton();
}

async function refreshBlocks(): Promise<void> {
  const reply = await request("blocks");
  if (reply === null) return;
  state.blocked.clear();
  for (const nick of reply.nicks as string[]) state.blocked.set(nameKey(nick), nick);
  renderHeader();
}

/** After a reconnect: the joined rooms, their topics and who is online may have changed. */
async function refreshAfterResume(login: Header): Promise<void> {
  for (const room of (login.rooms as string[] | undefined) ?? []) conversation("room", room);
  renderSidebar();
  files.refresh();
  await Promise.all([refreshRooms(), refreshOnline()]).catch(() => {});
}

async function refreshRooms(): Promise<void> {
  const reply = await request("rooms");
  if (reply === null) return;
  const list = byId("all-rooms");
  list.replaceChildren();
  for (const room of reply.rooms as { name: string; topic: string }[]) {
    list.append(el("option", { value: room.name }));
    const joined = state.rooms.get(nameKey(room.name));
    if (joined !== undefined) joined.topic = room.topic;
  }
  renderHeader();
}

async function refreshOnline(): Promise<void> {
  const reply = await request("who");
  if (reply === null) return;
  state.online.clear();
  for (const nick of reply.users as string[]) state.online.set(nameKey(nick), nick);
  renderOnline();
}

// ---------------------------------------------------------------- requests

/** Sends a request; shows a refusal and resolves null instead of throwing. */
async function request(type: string, fields: Header = {}): Promise<Header | null> {
  if (state.chat === null) return null;
  try {
    return await state.chat.request(type, fields);
  } catch (err) {
    showNotice(err instanceof RequestError ? err.message : String(err));
    return null;
  }
}

function showNotice(text: string): void {
  byId("notice").textContent = text;
}

// ---------------------------------------------------------------- events

function onEvent(header: Header): void {
  if (files.handleEvent(header)) return;
  switch (header.type) {
    case "msg":
    case "dm":
      addMessage(header as unknown as ChatMessage, true);
      break;
    case "presence":
      if (header.online === true) {
        state.online.set(nameKey(String(header.nick)), String(header.nick));
      } else state.online.delete(nameKey(String(header.nick)));
      renderOnline();
      break;
    case "topic": {
      const room = state.rooms.get(nameKey(String(header.room)));
      if (room !== undefined) {
        room.topic = String(header.topic);
        if (room === state.active) renderHeader();
      }
      break;
    }
    case "notice":
      showNotice(String(header.text));
      break;
    case "receipt":
      setReceipt(Number(header.id), header.status === "read" ? "read" : "delivered");
      break;
  }
}

/** Records what became of a direct message we sent, and shows it. */
function setReceipt(id: number, status: ReceiptStatus): void {
  const current = state.receipts.get(id);
  if (current !== undefined && RECEIPT_RANK[current] >= RECEIPT_RANK[status]) return;
  state.receipts.set(id, status);
  const shown = document.querySelector(`#message-list li[data-id="${id}"] .receipt`);
  if (shown !== null) {
    shown.textContent = RECEIPT_TEXT[status];
    shown.className = `receipt ${status}`;
  }
}

// ---------------------------------------------------------------- notifications

function showNotifyButton(): void {
  const supported = typeof Notification !== "undefined";
  byId("notify-button").hidden = !supported || Notification.permission !== "default";
}

/** Whether `text` mentions `nick` (`@nick` or the nick as a word). */
function mentions(text: string, nick: string): boolean {
  const escaped = nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^A-Za-z0-9_])@?${escaped}([^A-Za-z0-9_]|$)`, "i").test(text);
}

/** A system notification for a direct message or a mention, while the tab is hidden. */
/** Notifies a file offered while the tab is in the background, like a direct message. */
function notifyOffer(nick: string, name: string, file: number): void {
  if (!document.hidden || typeof Notification === "undefined") return;
  if (Notification.permission !== "granted") return;
  const shown = new Notification(`${nick} (file)`, {
    body: `offers you ${name}`,
    tag: `chat-file-${file}`,
  });
  shown.onclick = () => {
    globalThis.focus();
    void open(conversation("dm", nick));
    shown.close();
  };
}

function notify(message: ChatMessage): void {
  if (!document.hidden || typeof Notification === "undefined") return;
  if (Notification.permission !== "granted") return;
  const title = message.type === "dm"
    ? `${message.from} (direct message)`
    : `${message.from} in #${message.room}`;
  // A notification's title and body are shown as text by the system.
  const shown = new Notification(title, { body: message.text, tag: `chat-${message.id}` });
  shown.onclick = () => {
    globalThis.focus();
    void open(conversationOf(message));
    shown.close();
  };
}

function showLinkState(link: LinkState, why?: string): void {
  const status = byId("status");
  status.className = `status ${link}`;
  status.title = link;
  if (link === "reconnecting") showNotice(`Reconnecting… (${why ?? "connection lost"})`);
  else if (link === "online") showNotice("");
  else if (link === "closed" && why !== undefined && state.chat !== null) {
    // The session is over for good (logged out everywhere, token revoked): start over.
    forget();
    state.chat = null;
    leaveNote(`Logged out: ${why}`);
    location.reload();
  }
}

/** The conversation a message belongs to. */
function conversationOf(message: ChatMessage): Conversation {
  if (message.type === "msg") return conversation("room", String(message.room));
  const other = nameKey(message.from) === nameKey(state.me) ? String(message.to) : message.from;
  return conversation("dm", other);
}

/** Adds a message (once per id); `live`: it counts as unread when not on screen. */
function addMessage(message: ChatMessage, live: boolean): void {
  const target = conversationOf(message);
  if (target.messages.has(message.id)) return;
  target.messages.set(message.id, message);
  const mine = nameKey(message.from) === nameKey(state.me);
  if (target === state.active) {
    appendMessages([message]);
    if (!document.hidden && message.type === "dm" && !mine) {
      void request("read", { ids: [message.id] });
    }
  } else if (live && !mine) {
    target.unread++;
  }
  if (live && !mine && (message.type === "dm" || mentions(message.text, state.me))) {
    notify(message);
  }
  renderSidebar();
}

// ---------------------------------------------------------------- views

async function open(target: Conversation): Promise<void> {
  state.active = target;
  target.unread = 0;
  document.body.classList.add("in-conversation");
  renderSidebar();
  renderConversation();
  if (!target.loaded) await loadOlder(target);
  byId("composer-input").focus();
  if (target.kind === "dm" && !document.hidden) markRead(target);
}

/** Tells the sender the direct messages on screen are read (a receipt for each). */
function markRead(target: Conversation): void {
  const theirs = sorted(target).filter((m) => nameKey(m.from) !== nameKey(state.me));
  if (theirs.length > 0) void request("read", { ids: theirs.slice(-100).map((m) => m.id) });
}

function renderSidebar(): void {
  const rooms = byId("room-list");
  rooms.replaceChildren(
    ...[...state.rooms.values()].sort(byName).map((room) =>
      conversationItem(room, `#${room.name}`)
    ),
  );
  const dms = byId("dm-list");
  dms.replaceChildren(
    ...[...state.dms.values()].sort(byName).map((dm) => conversationItem(dm, `@${dm.name}`)),
  );
  if (state.dms.size === 0) dms.append(el("li", { class: "empty", text: "none yet" }));
}

function byName(a: Conversation, b: Conversation): number {
  return nameKey(a.name) < nameKey(b.name) ? -1 : 1;
}

function conversationItem(target: Conversation, label: string): HTMLLIElement {
  const button = el(
    "button",
    { type: "button", class: target === state.active ? "item active" : "item" },
    el("span", { class: "label", text: label }),
    target.unread > 0
      ? el("span", { class: "badge", text: String(target.unread), title: "unread" })
      : null,
  );
  button.addEventListener("click", () => void open(target));
  return el("li", { "data-name": target.name, "data-kind": target.kind }, button);
}

function renderOnline(): void {
  const list = byId("online-list");
  const nicks = [...state.online.values()].sort((a, b) => nameKey(a) < nameKey(b) ? -1 : 1);
  byId("online-count").textContent = String(nicks.length);
  list.replaceChildren(...nicks.map((nick) => {
    const self = nameKey(nick) === nameKey(state.me);
    const button = el(
      "button",
      { type: "button", class: "item", title: self ? "you" : `message ${nick}` },
      el("span", { class: "dot" }),
      el("span", { class: "label", text: self ? `${nick} (you)` : nick }),
    );
    if (self) button.disabled = true;
    else button.addEventListener("click", () => void open(conversation("dm", nick)));
    return el("li", {}, button);
  }));
}

function renderHeader(): void {
  const target = state.active;
  byId("conversation-title").textContent = target === null
    ? "No conversation"
    : target.kind === "room"
    ? `#${target.name}`
    : `@${target.name}`;
  byId("conversation-topic").textContent = target?.kind === "room"
    ? (target.topic || "no topic")
    : target?.kind === "dm"
    ? (state.online.has(nameKey(target.name)) ? "online" : "offline")
    : "";
  byId("topic-button").hidden = target?.kind !== "room";
  byId("leave-button").hidden = target?.kind !== "room";
  const block = byId("block-button");
  block.hidden = target?.kind !== "dm";
  block.textContent = target !== null && state.blocked.has(nameKey(target.name))
    ? "Unblock"
    : "Block";
}

function renderConversation(): void {
  renderHeader();
  files.render();
  const list = byId("message-list");
  list.replaceChildren();
  const target = state.active;
  if (target === null) return;
  appendMessages(sorted(target));
  updateHistoryStatus(target);
  scrollToBottom();
}

function sorted(target: Conversation): ChatMessage[] {
  return [...target.messages.values()].sort((a, b) => a.id - b.id);
}

function messageItem(message: ChatMessage): HTMLLIElement {
  const mine = nameKey(message.from) === nameKey(state.me);
  const time = new Date(message.ts);
  return el(
    "li",
    { class: mine ? "message mine" : "message", "data-id": String(message.id) },
    el("span", { class: "from", text: message.from }),
    el("time", {
      datetime: time.toISOString(),
      text: time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
    }),
    el("p", { class: "text", text: message.text }),
    receiptOf(message),
  );
}

/** The receipt line under a direct message we sent, or null. */
function receiptOf(message: ChatMessage): HTMLElement | null {
  if (message.type !== "dm" || nameKey(message.from) !== nameKey(state.me)) return null;
  const status = state.receipts.get(message.id) ?? "sent";
  return el("span", { class: `receipt ${status}`, text: RECEIPT_TEXT[status] });
}

/** Adds messages in id order where they belong (new ones at the end, as a rule). */
function appendMessages(messages: ChatMessage[]): void {
  const list = byId("message-list");
  const box = byId("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  for (const message of messages) {
    const item = messageItem(message);
    let before: Element | null = null;
    for (let node = list.lastElementChild; node !== null; node = node.previousElementSibling) {
      if (Number((node as HTMLElement).dataset.id) < message.id) break;
      before = node;
    }
    list.insertBefore(item, before);
  }
  if (atBottom || messages.some((m) => nameKey(m.from) === nameKey(state.me))) scrollToBottom();
}

function scrollToBottom(): void {
  const box = byId("messages");
  box.scrollTop = box.scrollHeight;
}

function updateHistoryStatus(target: Conversation): void {
  byId("history-status").textContent = target.loading
    ? "Loading older messages…"
    : target.more
    ? ""
    : target.messages.size === 0
    ? "No messages yet."
    : "Beginning of the conversation.";
}

/** Loads a page of messages older than those held, keeping the view where it was. */
async function loadOlder(target: Conversation): Promise<void> {
  if (target.loading || (target.loaded && !target.more)) return;
  target.loading = true;
  updateHistoryStatus(target);
  const oldest = sorted(target)[0]?.id;
  const fields: Header = target.kind === "room" ? { room: target.name } : { with: target.name };
  const reply = await request("history", {
    ...fields,
    limit: HISTORY_PAGE,
    ...(target.loaded && oldest !== undefined ? { before: oldest } : {}),
  });
  target.loading = false;
  target.loaded = true;
  if (reply === null) {
    target.more = false;
    updateHistoryStatus(target);
    return;
  }
  target.more = reply.more === true;
  const fresh = (reply.messages as ChatMessage[]).filter((m) => !target.messages.has(m.id));
  for (const message of fresh) target.messages.set(message.id, message);
  if (target === state.active) {
    const box = byId("messages");
    const fromBottom = box.scrollHeight - box.scrollTop;
    appendMessages(fresh.sort((a, b) => a.id - b.id));
    box.scrollTop = box.scrollHeight - fromBottom;
    updateHistoryStatus(target);
    // A short page may not fill the view: no scroll would ever ask for more.
    if (target.more && box.scrollHeight <= box.clientHeight) await loadOlder(target);
  }
}

// ---------------------------------------------------------------- sending

async function send(text: string): Promise<void> {
  const target = state.active;
  if (text.startsWith("/")) {
    await command(text);
    return;
  }
  if (target === null || text.trim() === "") return;
  const reply = target.kind === "room"
    ? await request("say", { room: target.name, text })
    : await request("dm", { to: target.name, text });
  if (reply === null) return;
  const message = reply.msg as ChatMessage;
  if (message.type === "dm" && reply.delivered === true) setReceipt(message.id, "delivered");
  addMessage(message, false);
}

async function toggleBlock(): Promise<void> {
  const target = state.active;
  if (target?.kind !== "dm") return;
  const key = nameKey(target.name);
  const blocked = state.blocked.has(key);
  const reply = await request(blocked ? "unblock" : "block", { nick: target.name });
  if (reply === null) return;
  if (blocked) state.blocked.delete(key);
  else state.blocked.set(key, target.name);
  showNotice(blocked ? `${target.name} is unblocked.` : `${target.name} is blocked.`);
  renderHeader();
}

/**
 * The composer's commands: /join ROOM, /leave, /topic TEXT, /msg NICK TEXT, /logout
 * (`/logout everywhere`: every session and remembered login of the account).
 */
async function command(line: string): Promise<void> {
  const [name, ...rest] = line.slice(1).split(" ");
  const arg = rest.join(" ");
  switch (name) {
    case "join":
      await join(arg.trim());
      return;
    case "leave":
      await leave();
      return;
    case "topic":
      await setTopic(arg);
      return;
    case "msg": {
      const [nick, ...words] = rest;
      if (nick === undefined) return;
      const target = conversation("dm", nick);
      await open(target);
      if (words.length > 0) await send(words.join(" "));
      return;
    }
    case "logout":
      await logOut(arg.trim() === "everywhere");
      return;
    default:
      showNotice(`Unknown command /${name}: try /join, /leave, /topic, /msg, /logout`);
  }
}

async function join(name: string): Promise<void> {
  const room = name.replace(/^#/, "");
  if (room === "") return;
  const reply = await request("join", { room });
  if (reply === null) return;
  const target = conversation("room", String(reply.room));
  target.topic = String(reply.topic ?? "");
  for (const message of (reply.history as ChatMessage[] | undefined) ?? []) {
    target.messages.set(message.id, message);
  }
  await open(target);
  void refreshRooms();
}

async function leave(): Promise<void> {
  const target = state.active;
  if (target?.kind !== "room") return;
  if (await request("leave", { room: target.name }) === null) return;
  state.rooms.delete(nameKey(target.name));
  const next = state.rooms.values().next().value;
  state.active = null;
  if (next !== undefined) await open(next);
  else {
    renderSidebar();
    renderConversation();
  }
}

async function setTopic(topic: string): Promise<void> {
  const target = state.active;
  if (target?.kind !== "room") return;
  const reply = await request("topic", { room: target.name, topic });
  if (reply === null) return;
  target.topic = String(reply.topic);
  renderHeader();
}

// ---------------------------------------------------------------- wiring

function wire(): void {
  byId("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void logIn(false);
  });
  byId("register-button").addEventListener("click", () => void logIn(true));
  byId("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId<HTMLInputElement>("composer-input");
    const text = input.value;
    input.value = "";
    void send(text);
  });
  byId("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId<HTMLInputElement>("join-room");
    const room = input.value;
    input.value = "";
    void join(room);
  });
  byId("leave-button").addEventListener("click", () => void leave());
  byId("block-button").addEventListener("click", () => void toggleBlock());
  byId("notify-button").addEventListener("click", async () => {
    await Notification.requestPermission();
    showNotifyButton();
  });
  byId("topic-button").addEventListener("click", () => {
    const input = byId<HTMLInputElement>("composer-input");
    input.value = "/topic ";
    input.focus();
  });
  byId("back-button").addEventListener("click", () => {
    document.body.classList.remove("in-conversation");
  });
  byId("logout-button").addEventListener("click", () => void logOut(false));
  byId("messages").addEventListener("scroll", () => {
    const target = state.active;
    if (target !== null && byId("messages").scrollTop < NEAR_TOP_PX) void loadOlder(target);
  });
  document.addEventListener("visibilitychange", () => {
    const target = state.active;
    if (!document.hidden && target?.kind === "dm") markRead(target);
  });
}

wire();
void resumeRemembered();
