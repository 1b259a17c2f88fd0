/** Small parsers and printers shared by the read-side commands. */

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** "90", "90s", "10m", "2h", "3d", "1w" → seconds; undefined when it is none of these. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,12})([smhdw]?)$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNITS[m[2] || 's']!;
}

/**
 * Message text made safe for one terminal line: control characters and bidirectional overrides
 * are shown escaped, so a message cannot move the cursor, clear the screen or fake other lines.
 */
export function escapeForTerminal(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    if (c === '\r') return '\\r';
    return `\\u{${c.codePointAt(0)!.toString(16)}}`;
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The text of a plaintext, or undefined when it is not valid UTF-8. */
export function decodeText(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}
