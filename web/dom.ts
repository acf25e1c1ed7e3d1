/**
 * Building DOM nodes without HTML: every text goes in through `textContent`, so a nick,
 * a message, a topic or a file name can never become markup.
 *
 * @module
 */

/** Attributes of {@linkcode el}: `text` is set as text, the rest as attributes. */
export type Attributes = { text?: string; class?: string } & Record<string, string | undefined>;

/**
 * Creates an element with attributes, text and children.
 *
 * @example
 * ```ts ignore
 * el("li", { class: "room", text: "<b>not bold</b>" }); // shows the tags as text
 * ```
 */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: (Node | null)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child !== null) node.append(child);
  return node;
}

/** The element with `id`, which the page must have. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`the page has no #${id}`);
  return node as T;
}
