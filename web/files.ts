/**
 * Files in the page's direct conversations: **Send file** picks a file and sends it to
 * the person of the open conversation, with a progress bar and **Cancel**; an offer shows
 * in the conversation with **Accept** and **Decline**, then a progress bar, then a
 * **Save** link once its SHA-256 matched. The transfers themselves are
 * web/file_transfer.ts; app.ts calls the hooks here (events, login, the open
 * conversation). File names are shown as text (web/dom.ts), never as HTML, and the saved
 * name is made safe by the terminal client's rules (protocol/file_names.ts).
 *
 * @module
 */

import { safeFileName } from "../protocol/file_names.ts";
import { nameKey } from "../protocol/names.ts";
import type { ChatSocket, Header } from "./chat_socket.ts";
import { byId, el } from "./dom.ts";
import { formatBytes, isFinal, type Transfer, WebFileTransfers } from "./file_transfer.ts";

/** What the files view needs of the page. */
export interface FilesHooks {
  /** The nick of the open direct conversation, or null (a room, or none). */
  activeDm(): string | null;
  /**
   * `nick` offered us file `file` named `name` (live or held): the page may count it as
   * unread, and notify it when in the background.
   */
  offered(nick: string, name: string, file: number): void;
  /** Shows a one-line notice. */
  notice(text: string): void;
}

/**
 * The files part of the page; see the module documentation.
 *
 * @example
 * ```ts ignore
 * const files = new FilesView({ activeDm: () => "bob", offered: () => {}, notice: show });
 * files.attach(chat); // after the login
 * ```
 */
export class FilesView {
  readonly #hooks: FilesHooks;
  #transfers: WebFileTransfers | null = null;
  /** Each transfer's item, and the state it was built for. */
  readonly #items = new Map<string, { item: HTMLLIElement; shape: string }>();

  /** Wires the **Send file** button of the page. */
  constructor(hooks: FilesHooks) {
    this.#hooks = hooks;
    const input = byId<HTMLInputElement>("file-input");
    byId("file-button").addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      const to = this.#hooks.activeDm();
      const files = [...input.files ?? []];
      input.value = "";
      if (to === null || this.#transfers === null) return;
      for (const file of files) void this.#transfers.send(to, file);
    });
  }

  /** Starts with a logged-in session: asks for the files held for us. */
  attach(chat: ChatSocket): void {
    this.#transfers = new WebFileTransfers(chat, (transfer) => this.#changed(transfer));
    this.refresh();
  }

  /** Releases the received files' `blob:` URLs (on logout). */
  close(): void {
    this.#transfers?.releaseAll();
  }

  /** Asks again for the files held for us (after a reconnect). */
  refresh(): void {
    this.#transfers?.refresh().catch((err) =>
      this.#hooks.notice(`Could not list the files offered to you: ${String(err)}`)
    );
  }

  /** Takes the server's file events; returns whether `header` was one. */
  handleEvent(header: Header): boolean {
    return this.#transfers?.handleEvent(header) ?? false;
  }

  /** Shows the **Send file** button and the transfers of the open direct conversation. */
  render(): void {
    const nick = this.#hooks.activeDm();
    byId("file-button").hidden = nick === null;
    const list = byId("file-list");
    const transfers = nick === null || this.#transfers === null ? [] : this.#transfers.with(nick);
    list.replaceChildren(...transfers.map((t) => this.#item(t)));
    list.hidden = transfers.length === 0;
  }

  #changed(transfer: Transfer): void {
    if (transfer.direction === "receive" && transfer.state === "offered") {
      this.#hooks.offered(transfer.nick, transfer.name, transfer.file ?? 0);
    }
    const nick = this.#hooks.activeDm();
    if (nick === null || nameKey(nick) !== nameKey(transfer.nick)) return;
    const list = byId("file-list");
    const shown = this.#items.get(transfer.key);
    const item = this.#item(transfer);
    if (shown?.item.isConnected && shown.item !== item) shown.item.replaceWith(item);
    else if (!item.isConnected) {
      list.append(item);
      const box = byId("messages");
      box.scrollTop = box.scrollHeight;
    }
    list.hidden = false;
  }

  /** Removes a finished transfer from the list, releasing its received file. */
  #dismiss(key: string): void {
    this.#transfers?.dismiss(key);
    this.#items.get(key)?.item.remove();
    this.#items.delete(key);
    const list = byId("file-list");
    list.hidden = list.childElementCount === 0;
  }

  /** The item of `transfer`: built again when its shape changed, else updated in place. */
  #item(transfer: Transfer): HTMLLIElement {
    const shape = `${transfer.state}/${transfer.accepted}/${transfer.error?.code ?? ""}`;
    const known = this.#items.get(transfer.key);
    let item: HTMLLIElement;
    if (known !== undefined && known.shape === shape) {
      item = known.item;
    } else {
      item = this.#build(transfer);
      this.#items.set(transfer.key, { item, shape });
    }
    item.querySelector(".file-status")!.textContent = statusOf(transfer);
    const progress = item.querySelector("progress");
    if (progress !== null) {
      progress.max = Math.max(1, transfer.size);
      progress.value = transfer.bytes;
    }
    return item;
  }

  #build(transfer: Transfer): HTMLLIElement {
    const transfers = this.#transfers!;
    const file = transfer.file;
    const buttons: HTMLElement[] = [];
    const button = (label: string, cls: string, action: () => Promise<unknown>) => {
      // Accept is the one to take; the others are quieter.
      const look = cls === "accept" ? cls : `secondary ${cls}`;
      const node = el("button", { type: "button", class: look, text: label });
      node.addEventListener("click", () => {
        node.disabled = true;
        action().catch((err) => this.#hooks.notice(String(err)));
      });
      buttons.push(node);
    };
    const receiving = transfer.direction === "receive";
    if (receiving && transfer.state === "offered" && file !== null) {
      button("Accept", "accept", () => transfers.accept(file));
    }
    if (
      receiving && file !== null &&
      (transfer.state === "offered" || transfer.error?.code === "too_large")
    ) {
      button("Decline", "decline", () => transfers.decline(file));
    }
    if (!isFinal(transfer.state) && transfer.state !== "offered") {
      button("Cancel", "cancel", () => transfers.cancel(transfer.key));
    }
    if (transfer.state === "saved" && transfer.url !== null) {
      buttons.push(el("a", {
        class: "save",
        href: transfer.url,
        download: safeFileName(transfer.name),
        text: "Save",
      }));
    }
    if (isFinal(transfer.state)) {
      button("Dismiss", "dismiss", () => {
        this.#dismiss(transfer.key);
        return Promise.resolve();
      });
    }
    const moving = transfer.state === "hashing" || transfer.state === "uploading" ||
      transfer.state === "receiving";
    return el(
      "li",
      {
        class: `transfer ${transfer.direction} ${transfer.state}`,
        "data-key": transfer.key,
        "data-state": transfer.state,
        "data-file": file === null ? undefined : String(file),
        "data-code": transfer.error?.code,
        title: transfer.sha256 === "" ? undefined : `SHA-256 ${transfer.sha256}`,
      },
      el("span", { class: "file-icon", text: receiving ? "⬇" : "⬆" }),
      el("span", { class: "file-name", text: transfer.name }),
      el("span", { class: "file-size", text: formatBytes(transfer.size) }),
      el("span", { class: "file-status" }),
      moving ? el("progress", { class: "file-progress" }) : null,
      buttons.length > 0 ? el("span", { class: "file-actions" }, ...buttons) : null,
    );
  }
}

/** One line on what became of a transfer. */
function statusOf(t: Transfer): string {
  const progress = `${formatBytes(t.bytes)} of ${formatBytes(t.size)}`;
  switch (t.state) {
    case "hashing":
      return `Computing its SHA-256… ${progress}`;
    case "uploading":
      return `Sending to ${t.nick}: ${progress}${t.accepted ? ` (${t.nick} is receiving it)` : ""}`;
    case "uploaded":
      return t.accepted
        ? `Sent; ${t.nick} is receiving it`
        : `Sent; the server holds it until ${t.nick} accepts it`;
    case "delivered":
      return `${t.nick} received it (SHA-256 checked)`;
    case "offered":
      return `${t.nick} offers you a file`;
    case "receiving":
      return `Receiving: ${progress}`;
    case "saved":
      return "Received, SHA-256 checked";
    case "declined":
    case "cancelled":
    case "failed": {
      const word = t.state === "failed" ? `Failed (${t.error?.code ?? "error"})` : "Stopped";
      return `${word}: ${t.error?.message ?? t.state}`;
    }
  }
}
