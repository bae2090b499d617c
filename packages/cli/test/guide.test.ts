import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const GUIDE = path.join(import.meta.dirname, '..', 'README.md');

/** The guide's lines that a Markdown renderer shows as code, and the sections it shows as prose. */
function layout(text: string): { headingsInCode: string[]; openAtEnd: boolean } {
  const headingsInCode: string[] = [];
  let inCode = false;
  for (const line of text.split('\n')) {
    // CommonMark: a fence with an info string only opens a block; inside one, only a bare fence closes it.
    if (/^ {0,3}```/.test(line)) {
      if (!inCode || line.trim() === '```') inCode = !inCode;
    } else if (inCode && /^#{2,6} /.test(line)) {
      headingsInCode.push(line);
    }
  }
  return { headingsInCode, openAtEnd: inCode };
}

describe('the CLI guide (README.md)', () => {
  // Two transcripts merged into each other once left a block open: "What changed in version 2"
  // and "For testers" were shown as code, and the transcripts after them as prose.
  it('closes every code block before the next section', () => {
    expect(layout(readFileSync(GUIDE, 'utf8'))).toEqual({ headingsInCode: [], openAtEnd: false });
  });
});
