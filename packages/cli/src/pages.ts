/** A paged list's answer, as every paged procedure gives it. */
export interface PageOf<T> {
  items: T[];
  nextCursor: string | null;
}

export interface PageOpts {
  limit?: number;
  cursor?: string;
}

/** The biggest page the server gives (the contract's limit of 100). */
const PAGE_SIZE = 100;

/** Every page, one after the other: a list shown by the CLI is never cut off. */
export async function allPages<T>(fetchPage: (page: { limit: number; cursor?: string }) => Promise<PageOf<T>>): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await fetchPage({ limit: PAGE_SIZE, ...(cursor !== undefined ? { cursor } : {}) });
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return items;
}

/** Whether the caller asked for one page (--limit or --cursor) rather than the whole list. */
export const onePage = (opts: PageOpts): boolean => opts.limit !== undefined || opts.cursor !== undefined;

/** The page options as a procedure's input. */
export const pageInput = (opts: PageOpts) => ({ ...(opts.limit !== undefined ? { limit: opts.limit } : {}), ...(opts.cursor !== undefined ? { cursor: opts.cursor } : {}) });

/**
 * The line under one page that says how to ask for the next: the same command and filters, the same
 * --limit (without it the next page would come at the server's default size), and the cursor.
 */
export const morePage = (command: string, opts: PageOpts, nextCursor: string | null | undefined): string =>
  nextCursor ? `\nMore: concert ${command}${opts.limit !== undefined ? ` --limit ${opts.limit}` : ''} --cursor ${nextCursor}` : '';
