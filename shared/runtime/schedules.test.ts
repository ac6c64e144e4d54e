import { describe, expect, it } from 'vitest';
import { repeatOptions } from './schedules.ts';

describe('schedule specs', () => {
  it('map every-N-seconds and cron onto BullMQ repeat options', () => {
    expect(repeatOptions({ id: 'sweep', everySeconds: 30, payload: {} })).toEqual({ every: 30_000 });
    expect(repeatOptions({ id: 'hourly', cron: '0 * * * *', payload: {} })).toEqual({ pattern: '0 * * * *' });
    expect(repeatOptions({ id: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Paris', payload: {} }))
      .toEqual({ pattern: '0 3 * * *', tz: 'Europe/Paris' });
    expect(() => repeatOptions({ id: 'never', everySeconds: 0, payload: {} })).toThrow(/everySeconds/);
  });
});
