import type { ConcertSummary } from '@concert/api';
import { useQuery } from '@tanstack/react-query';
import { useTRPC } from './trpc';

/** The public catalog: concerts.list. */
export function ConcertList({ onPick }: { onPick: (concert: ConcertSummary) => void }) {
  const trpc = useTRPC();
  const concerts = useQuery(trpc.concerts.list.queryOptions({}));
  if (concerts.isPending) return <p>Loading concerts…</p>;
  if (concerts.isError) return <p role="alert">{concerts.error.message}</p>;
  return (
    <ul>
      {concerts.data.map((c) => (
        <li key={c.concertId}>
          <button type="button" onClick={() => onPick(c)}>
            {c.title} — {c.venue} ({c.scheduleCount} shows)
          </button>
        </li>
      ))}
    </ul>
  );
}
