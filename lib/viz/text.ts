/**
 * Text without a browser: DejaVu Sans advance widths to measure and wrap titles and legends, and
 * the small helpers that write text and numbers into SVG.
 *
 * @module
 */

// Advance widths of DejaVu Sans for ASCII 32..126, in font units (2048 per em), read from the
// bundled TTF's hmtx table. Other characters are estimated at 0.7 em.
const ASCII_ADVANCE = [
  651,
  821,
  942,
  1716,
  1303,
  1946,
  1597,
  563,
  799,
  799,
  1024,
  1716,
  651,
  739,
  651,
  690,
  1303,
  1303,
  1303,
  1303,
  1303,
  1303,
  1303,
  1303,
  1303,
  1303,
  690,
  690,
  1716,
  1716,
  1716,
  1087,
  2048,
  1401,
  1405,
  1430,
  1577,
  1294,
  1178,
  1587,
  1540,
  604,
  604,
  1343,
  1141,
  1767,
  1532,
  1612,
  1235,
  1612,
  1423,
  1300,
  1251,
  1499,
  1401,
  2025,
  1403,
  1251,
  1403,
  799,
  690,
  799,
  1716,
  1024,
  1024,
  1255,
  1300,
  1126,
  1300,
  1260,
  721,
  1300,
  1298,
  569,
  569,
  1186,
  569,
  1995,
  1298,
  1253,
  1300,
  1300,
  842,
  1067,
  803,
  1298,
  1212,
  1675,
  1212,
  1212,
  1075,
  1303,
  690,
  1303,
  1716,
];

/**
 * Width in px of `text` set in DejaVu Sans at `fontSize` px (exact for ASCII, estimated beyond).
 *
 * @example
 * ```ts
 * import { textWidth } from "./text.ts";
 * const w = textWidth("loss", 10);
 * if (Math.abs(w - 19.3) > 0.1) throw new Error(`expected about 19.3 px, got ${w}`);
 * ```
 */
export function textWidth(text: string, fontSize: number): number {
  let units = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    units += c >= 32 && c < 127 ? ASCII_ADVANCE[c - 32] : 1434;
  }
  return (units / 2048) * fontSize;
}

/** Greedy word wrap to `maxWidth` px; a single word longer than a line stays whole. */
export function wrapText(text: string, fontSize: number, maxWidth: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = "";
    for (const word of paragraph.split(/\s+/).filter((w) => w !== "")) {
      const next = line === "" ? word : `${line} ${word}`;
      if (line !== "" && textWidth(next, fontSize) > maxWidth) {
        lines.push(line);
        line = word;
      } else line = next;
    }
    lines.push(line);
  }
  return lines;
}

/** Escape text for an SVG attribute value or text node. */
export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

/** Round to 2 decimals for compact SVG coordinates. */
export function r2(v: number): string {
  return String(Math.round(v * 100) / 100);
}
