import { createPrompt, isDownKey, isEnterKey, isSpaceKey, isUpKey, makeTheme, useKeypress, usePrefix, useState } from '@inquirer/core';
import { type Colors, won } from './format.ts';
import { renderSeatMap, seatMapCols, seatMapFrameLines } from './seatmap.ts';
import type { SeatMap } from './types.ts';

export interface SeatPickerConfig {
  message: string;
  map: SeatMap;
  c: Colors;
  title?: string;
  cols?: number;
  /** At most this many seats (the ticket limit). */
  max: number;
  /** The terminal's size, read at each drawing: the grid is fitted to it (rows of fewer seats, a window of rows). */
  size?: () => { columns?: number | undefined; rows?: number | undefined };
}

/** The picker's own lines around the map: its question, and the seat, the picks, the keys and an error below. */
const PICKER_LINES = 6;

/**
 * Seats picked on the map itself: the arrow keys move a cursor over the grid (a row is `cols` seats),
 * space picks or unpicks the seat under it, enter holds what is picked. A custom @inquirer/core
 * prompt, so it shares inquirer's terminal handling (raw mode, redraw, Ctrl-C) with the other questions.
 */
export const seatPicker = createPrompt<number[], SeatPickerConfig>((config, done) => {
  const { map, c, max } = config;
  const seats = [...map.seats].sort((a, b) => a.seatNumber - b.seatNumber);
  const size = config.size?.() ?? {};
  const cols = seatMapCols(map, size.columns, config.cols ?? 10);
  const firstFree = Math.max(
    0,
    seats.findIndex((s) => s.status === 'AVAILABLE'),
  );
  const [at, setAt] = useState(firstFree);
  const [picked, setPicked] = useState<number[]>([]);
  const [error, setError] = useState<string | undefined>(undefined);
  const [status, setStatus] = useState<'idle' | 'done'>('idle');
  const theme = makeTheme({});
  const prefix = usePrefix({ status, theme });

  useKeypress((key) => {
    if (status !== 'idle' || seats.length === 0) return;
    setError(undefined);
    const move = (to: number) => setAt(Math.min(seats.length - 1, Math.max(0, to)));
    if (key.name === 'left') move(at - 1);
    else if (key.name === 'right') move(at + 1);
    else if (isUpKey(key)) move(at - cols);
    else if (isDownKey(key)) move(at + cols);
    else if (isSpaceKey(key)) {
      const seat = seats[at]!;
      if (picked.includes(seat.seatNumber)) setPicked(picked.filter((n) => n !== seat.seatNumber));
      else if (seat.status !== 'AVAILABLE') setError(`Seat ${seat.seatNumber} is ${seat.status.toLowerCase()}; pick an available one (○)`);
      else if (picked.length >= max) setError(`At most ${max} seats: unpick one first (space on it)`);
      else setPicked([...picked, seat.seatNumber].sort((a, b) => a - b));
    } else if (isEnterKey(key)) {
      if (picked.length === 0) setError('Pick at least one seat: move with the arrow keys, space to pick');
      else {
        setStatus('done');
        done(picked);
      }
    }
  });

  if (status === 'done') return `${prefix} ${c.bold(config.message)} ${c.cyan(picked.join(', '))}`;
  if (seats.length === 0) return `${prefix} ${c.bold(config.message)} This show has no seats.`;
  const here = seats[at]!;
  const total = seats.filter((s) => picked.includes(s.seatNumber)).reduce((sum, s) => sum + s.price, 0);
  // At least three rows of seats, however short the terminal (one of them the cursor's).
  const maxRows = size.rows ? Math.max(3, size.rows - PICKER_LINES - seatMapFrameLines(map)) : undefined;
  const grid = renderSeatMap(map, c, { ...(config.title ? { title: config.title } : {}), cols, cursor: here.seatNumber, picked: new Set(picked), ...(maxRows ? { maxRows } : {}) });
  const lines = [
    `${prefix} ${c.bold(config.message)}`,
    grid,
    '',
    `  Seat ${c.bold(String(here.seatNumber))} · ${here.grade} ${won(here.price)} · ${picked.includes(here.seatNumber) ? 'picked' : here.status.toLowerCase()}`,
    `  Picked: ${picked.length ? `${picked.join(', ')} (${won(total)})` : 'none'} · up to ${max}`,
    c.dim('  ←↑→↓ move · space pick/unpick · enter hold the picked seats · Ctrl-C leave'),
  ];
  if (error) lines.push(c.red(`  ${error}`));
  return lines.join('\n');
});
