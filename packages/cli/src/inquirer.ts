// The prompts the CLI uses, behind one dynamic import (prompts.ts), so the bundle keeps only these
// and --help never loads them.
export { confirm, input, select } from '@inquirer/prompts';
export { countdownConfirm } from './countdown-confirm.ts';
export { seatPicker } from './seat-picker.ts';
