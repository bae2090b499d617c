// The prompts the CLI uses, behind one dynamic import (prompts.ts), so the bundle keeps only these.
export { confirm, input, select } from '@inquirer/prompts';
