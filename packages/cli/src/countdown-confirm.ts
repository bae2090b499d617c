import { createPrompt, isEnterKey, makeTheme, useEffect, useKeypress, usePrefix, useState } from '@inquirer/core';
import { duration } from './format.ts';

export interface CountdownConfirmConfig {
  /** The question, given what is left, e.g. `Pay ₩200,000? The hold lapses in 4m 59s`. */
  message: (left: string) => string;
  deadline: Date;
  default?: boolean;
  now?: () => Date;
}

/** The answer, or `lapsed` when the deadline passed before one came. */
export type CountdownAnswer = boolean | 'lapsed';

/**
 * A yes/no question with a live countdown in it: what is left is redrawn every second until the
 * question is answered or the deadline passes (then it answers `lapsed` by itself). inquirer's
 * confirm draws its message once, so this is a small @inquirer/core prompt of its own.
 */
export const countdownConfirm = createPrompt<CountdownAnswer, CountdownConfirmConfig>((config, done) => {
  const now = () => (config.now ? config.now() : new Date()).getTime();
  const secondsLeft = () => Math.max(0, Math.ceil((config.deadline.getTime() - now()) / 1000));
  const [left, setLeft] = useState(secondsLeft());
  const [value, setValue] = useState('');
  const [status, setStatus] = useState<'idle' | 'done'>('idle');
  const [error, setError] = useState<string | undefined>(undefined);
  const theme = makeTheme({});
  const prefix = usePrefix({ status, theme });
  const yes = config.default !== false;

  useEffect(() => {
    // A quarter-second tick keeps the figure on the second; equal values do not redraw.
    const timer = setInterval(() => setLeft(secondsLeft()), 250);
    return () => clearInterval(timer);
  }, []);
  useEffect(() => {
    if (left === 0 && status === 'idle') {
      setStatus('done');
      done('lapsed');
    }
  }, [left]);

  useKeypress((key, rl) => {
    if (status !== 'idle') return;
    if (isEnterKey(key)) {
      const v = value.trim().toLowerCase();
      const answer = v === '' ? yes : 'yes'.startsWith(v) ? true : 'no'.startsWith(v) ? false : undefined;
      if (answer === undefined) {
        rl.write(value);
        setError('Answer y or n');
        return;
      }
      setValue(answer ? 'yes' : 'no');
      setStatus('done');
      done(answer);
    } else {
      setValue(rl.line);
      setError(undefined);
    }
  });

  const leftText = left === 0 ? 'lapsed' : `${duration(left * 1000)} left`;
  const message = config.message(leftText);
  if (status === 'done') return `${prefix} ${message} ${left === 0 && value === '' ? '' : value}`.trimEnd();
  return [`${prefix} ${message} ${yes ? '(Y/n)' : '(y/N)'} ${value}`, error ? `> ${error}` : undefined];
});
