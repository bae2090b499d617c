/**
 * What a booking step asks of the waiting room: the caller's token must be ACTIVE for the
 * concert concerned. Built per request from the caller's identity and x-queue-token header.
 */
export interface QueueGate {
  /**
   * With `seatMapOf`, the same round trip also reads that schedule's seat-map version, when the
   * store can (saving the seat map a second call).
   */
  assertActive(concertId: number, opts?: { seatMapOf?: number }): Promise<{ seatMapVersion?: { epoch: string; n: number } | null }>;
}
