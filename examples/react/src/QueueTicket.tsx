import { useMutation, useQuery } from '@tanstack/react-query';
import { session, useTRPC } from './trpc';

/**
 * The waiting-room ticket: enters the line once, then polls queue.status as often as the server
 * asks (pollAfterMs) until the ticket is ACTIVE.
 */
export function QueueTicket({ concertId, onActive }: { concertId: number; onActive: () => void }) {
  const trpc = useTRPC();
  const enter = useMutation(
    trpc.queue.enter.mutationOptions({
      onSuccess: (ticket) => {
        session.queueToken = ticket.token;
      },
    }),
  );
  const status = useQuery(
    trpc.queue.status.queryOptions(
      {},
      {
        enabled: enter.isSuccess,
        refetchInterval: (query) => {
          const t = query.state.data;
          return t && (t.status === 'PRE_QUEUE' || t.status === 'WAITING') ? t.pollAfterMs : false;
        },
      },
    ),
  );
  const ticket = status.data ?? enter.data;

  if (!ticket) {
    return (
      <button type="button" disabled={enter.isPending} onClick={() => enter.mutate({ concertId })}>
        Join the line
      </button>
    );
  }
  if (ticket.status === 'ACTIVE') {
    return (
      <p>
        Your turn until {ticket.activeUntil?.toLocaleTimeString()}.{' '}
        <button type="button" onClick={onActive}>
          Pick seats
        </button>
      </p>
    );
  }
  if (ticket.status === 'EXPIRED' || ticket.status === 'SOLD_OUT') return <p>{ticket.status === 'SOLD_OUT' ? 'Sold out.' : 'Your turn has passed.'}</p>;
  return (
    <p aria-live="polite">
      {ticket.paused
        ? 'The sale is paused; your place is kept.'
        : `${ticket.aheadCount} ahead of you${ticket.etaSeconds === null ? '' : `, about ${Math.ceil(ticket.etaSeconds / 60)} min`}.`}{' '}
      Checking again in {Math.round(ticket.pollAfterMs / 1000)} s.
    </p>
  );
}
