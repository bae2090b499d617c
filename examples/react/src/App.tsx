import type { ConcertSummary } from '@concert/api';
import { QueryClientProvider, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { ConcertList } from './ConcertList';
import { HoldSeats } from './HoldSeats';
import { QueueTicket } from './QueueTicket';
import { makeClients, TRPCProvider, useTRPC } from './trpc';

/** The providers: one QueryClient and one tRPC client for the app's lifetime. */
export function App() {
  const [{ queryClient, trpcClient }] = useState(makeClients);
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        <Booking />
      </TRPCProvider>
    </QueryClientProvider>
  );
}

/** Pick a concert, wait in its line, pick a show, hold seats. */
function Booking() {
  const [concert, setConcert] = useState<ConcertSummary>();
  const [active, setActive] = useState(false);
  if (!concert) return <ConcertList onPick={setConcert} />;
  return (
    <section>
      <h1>{concert.title}</h1>
      {active ? <Shows concertId={concert.concertId} /> : <QueueTicket concertId={concert.concertId} onActive={() => setActive(true)} />}
    </section>
  );
}

function Shows({ concertId }: { concertId: number }) {
  const trpc = useTRPC();
  const [scheduleId, setScheduleId] = useState<number>();
  const schedules = useQuery(trpc.concerts.schedules.queryOptions({ concertId }));
  if (scheduleId !== undefined) return <HoldSeats scheduleId={scheduleId} />;
  if (!schedules.data) return <p>Loading shows…</p>;
  return (
    <ul>
      {schedules.data.schedules.map((s) => (
        <li key={s.scheduleId}>
          <button type="button" disabled={s.availableSeats === 0} onClick={() => setScheduleId(s.scheduleId)}>
            {s.startsAt.toLocaleString()} — {s.availableSeats} of {s.totalSeats} free
          </button>
        </li>
      ))}
    </ul>
  );
}
