import { type Colors, displayWidth, localTime, won } from './format.ts';
import type { SeatMap } from './types.ts';

/** The seat map as the API returns it (the AppRouter's type). */
export type SeatMapView = SeatMap;
export type SeatStatus = SeatMap['seats'][number]['status'];

export const GLYPH: Record<SeatStatus, string> = { AVAILABLE: '○', HELD: '◐', SOLD: '●' };
/** A seat picked on the map (seat picker), before it is held. */
export const PICKED = '✓';
/** Marks the seat under the seat picker's cursor (in the gap before it, so the grid does not move). */
export const CURSOR = '>';

/** One short mark per grade: its initial when initials are unique, else up to three letters, else a number. */
export function gradeMarks(grades: string[]): Map<string, string> {
  const attempts = [(g: string) => g.slice(0, 1).toUpperCase(), (g: string) => g.slice(0, 3), (_g: string, i: number) => String(i + 1)];
  for (const mark of attempts) {
    const marks = grades.map(mark);
    if (new Set(marks).size === marks.length) return new Map(grades.map((g, i) => [g, marks[i]!]));
  }
  return new Map(grades.map((g, i) => [g, String(i + 1)]));
}

/** The widths a map's grid is drawn with: a cell is a gap, a glyph, the number and the grade's mark. */
function gridWidths(seats: SeatMapView['seats']) {
  const grades: string[] = [];
  for (const s of seats) if (!grades.includes(s.grade)) grades.push(s.grade);
  const marks = gradeMarks(grades);
  const markW = Math.max(...[...marks.values()].map(displayWidth));
  const last = seats.reduce((max, s) => Math.max(max, s.seatNumber), 0);
  const numW = String(last).length;
  const rangeW = numW * 2 + 1;
  // "  " + the row's range + " │", then the cells.
  return { grades, marks, markW, numW, rangeW, prefixW: rangeW + 4, cellW: 2 + numW + markW };
}

/**
 * Seats per row for a terminal `width` columns wide: `preferred` (10) when they fit, fewer when not
 * (a 1,000-seat show's rows were 81 columns, and wrapped, in an 80-column terminal).
 */
export function seatMapCols(map: SeatMapView, width: number | undefined, preferred = 10): number {
  if (!width || map.seats.length === 0) return Math.max(1, preferred);
  const { prefixW, cellW } = gridWidths(map.seats);
  return Math.max(1, Math.min(preferred, Math.floor((width - prefixW) / cellW)));
}

/** The lines renderSeatMap draws besides the grid's rows (header, legend, summary). */
export const seatMapFrameLines = (map: SeatMapView): number => 6 + gridWidths(map.seats).grades.length;

/**
 * The seat map as a grid: rows of `cols` seats, each cell `glyph number grade-mark`, coloured by status
 * (the glyph says the status without colour too), then a legend with each grade's price and what is left.
 * With `maxRows`, only that many lines of the grid, around the cursor's row, and a line above and
 * below saying how many rows are out of sight (the seat picker in a terminal shorter than the map).
 */
export function renderSeatMap(map: SeatMapView, c: Colors, opts: { cols?: number; title?: string; cursor?: number; picked?: ReadonlySet<number>; maxRows?: number } = {}): string {
  const cols = Math.max(1, opts.cols ?? 10);
  const seats = [...map.seats].sort((a, b) => a.seatNumber - b.seatNumber);
  const header = `${c.bold(opts.title ?? `Concert ${map.concertId}`)} · ${localTime(map.startsAt)} · schedule ${map.scheduleId}`;
  if (seats.length === 0) return `${header}\n\n  This schedule has no seats.`;

  const { grades, marks, markW, numW, rangeW } = gridWidths(seats);
  const palette = [c.magenta, c.cyan, c.blue, c.white, c.green, c.yellow];
  const gradeColor = new Map(grades.map((g, i) => [g, palette[i % palette.length]!]));

  const cell = (s: SeatMapView['seats'][number]) => {
    const num = String(s.seatNumber).padStart(numW);
    const mark = padEndWidth(marks.get(s.grade)!, markW);
    if (opts.picked?.has(s.seatNumber)) return c.bold(c.cyan(`${PICKED}${num}${mark}`));
    if (s.status === 'AVAILABLE') return `${c.green(`${GLYPH.AVAILABLE}${num}`)}${gradeColor.get(s.grade)!(mark)}`;
    if (s.status === 'HELD') return c.yellow(`${GLYPH.HELD}${num}`) + c.dim(mark);
    return c.dim(c.red(`${GLYPH.SOLD}${num}`) + mark);
  };
  const gapAndCell = (s: SeatMapView['seats'][number]) => (s.seatNumber === opts.cursor ? `${c.bold(CURSOR)}${c.inverse(cell(s))}` : ` ${cell(s)}`);

  const lines = [header, ''];
  const rows: string[] = [];
  for (let i = 0; i < seats.length; i += cols) {
    const row = seats.slice(i, i + cols);
    const label = `${row[0]!.seatNumber}-${row[row.length - 1]!.seatNumber}`.padStart(rangeW);
    rows.push(`  ${c.dim(label)} │${row.map(gapAndCell).join('')}`);
  }
  if (opts.maxRows !== undefined && rows.length > opts.maxRows) {
    // Two of the lines say what is above and below; the cursor's row stays in the middle.
    const keep = Math.max(1, opts.maxRows - 2);
    const at = Math.max(0, seats.findIndex((s) => s.seatNumber === opts.cursor));
    const start = Math.min(Math.max(0, Math.floor(at / cols) - Math.floor(keep / 2)), rows.length - keep);
    const more = (n: number, where: string) => c.dim(n > 0 ? `  ${where} ${n} more row${n === 1 ? '' : 's'}` : '');
    lines.push(more(start, '↑'), ...rows.slice(start, start + keep), more(rows.length - start - keep, '↓'));
  } else lines.push(...rows);

  const count = (st: SeatStatus) => seats.filter((s) => s.status === st).length;
  const available = count('AVAILABLE');
  lines.push('');
  lines.push(`  ${c.green(`${GLYPH.AVAILABLE} available`)}   ${c.yellow(`${GLYPH.HELD} held`)}   ${c.red(`${GLYPH.SOLD} sold`)}${opts.picked ? `   ${c.cyan(`${PICKED} your pick`)}` : ''}`);
  const gradeW = Math.max(...grades.map(displayWidth));
  const priceTexts = grades.map((g) => won(seats.find((s) => s.grade === g)!.price));
  const priceW = Math.max(...priceTexts.map((p) => p.length));
  grades.forEach((g, i) => {
    const ofGrade = seats.filter((s) => s.grade === g);
    const left = ofGrade.filter((s) => s.status === 'AVAILABLE').length;
    const range = `${ofGrade[0]!.seatNumber}-${ofGrade[ofGrade.length - 1]!.seatNumber}`;
    const leftText = left === 0 ? c.red('sold out') : `${left} of ${ofGrade.length} left`;
    lines.push(`  ${gradeColor.get(g)!(padEndWidth(marks.get(g)!, markW))}  ${padEndWidth(g, gradeW)}  ${priceTexts[i]!.padStart(priceW)}  seats ${range.padEnd(rangeW)}  ${leftText}`);
  });
  lines.push('');
  const summary = `${available} of ${seats.length} seats available · ${count('HELD')} held · ${count('SOLD')} sold`;
  lines.push(available === 0 ? `  ${c.bold(c.red('SOLD OUT'))} · ${summary}` : `  ${summary}`);
  return lines.join('\n');
}

/**
 * Pads to a width on screen, not a length: a Korean grade (일반석) takes two columns a character,
 * and padEnd by length pushed its cells and legend row out of line (an outside review).
 */
function padEndWidth(s: string, width: number): string {
  return s + ' '.repeat(Math.max(0, width - displayWidth(s)));
}
