/**
 * JSON.parse of a file's text, without the UTF-8 byte-order mark some editors put first (Windows
 * Notepad does): JSON.parse refuses it ("Unexpected token '\uFEFF'") although the rest is good JSON.
 */
export function parseJsonFile(text: string): unknown {
  return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
}
