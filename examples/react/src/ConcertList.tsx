import type { ConcertSummary } from '@concert/api';
import { useInfiniteQuery } from '@tanstack/react-query';
import { useTRPC } from './trpc';

/** The public catalog: concerts.list, a page at a time (its nextCursor is the next page's cursor). */
export function ConcertList({ onPick }: { onPick: (concert: ConcertSummary) => void }) {
  const trpc = useTRPC();
  const concerts = useInfiniteQuery(trpc.concerts.list.infiniteQueryOptions({ limit: 20 }, { getNextPageParam: (page) => page.nextCursor }));
  if (concerts.isPending) return <p>Loading concerts…</p>;
  if (concerts.isError) return <p role="alert">{concerts.error.message}</p>;
  return (
    <>
      <ul>
        {concerts.data.pages
          .flatMap((page) => page.items)
          .map((c) => (
            <li key={c.concertId}>
              <button type="button" onClick={() => onPick(c)}>
                {c.title} — {c.venue} ({c.scheduleCount} shows)
              </button>
            </li>
          ))}
      </ul>
      {concerts.hasNextPage && (
        <button type="button" disabled={concerts.isFetchingNextPage} onClick={() => concerts.fetchNextPage()}>
          More concerts
        </button>
      )}
    </>
  );
}
