/**
 * A small bar of accelerator memory: what the model needs of the capacity.
 */
import React from 'react';

import { formatBytes } from './format';

export function MemoryBar(props: {
  /** Bytes the model needs, or null when no model is judged. */
  used: number | null;
  capacity: number;
}): JSX.Element {
  const { used, capacity } = props;
  const share =
    used === null || !(capacity > 0) ? 0 : Math.min(1, used / capacity);
  const text =
    used === null
      ? `Accelerator memory: ${formatBytes(capacity)}; no model judged yet`
      : `Accelerator memory: the model needs ${formatBytes(used)} of ${formatBytes(capacity)}`;
  return (
    <span
      className="ei-MemoryBar"
      role="meter"
      aria-label={text}
      aria-valuemin={0}
      aria-valuemax={capacity}
      aria-valuenow={used ?? 0}
      title={text}
      data-over={used !== null && used > capacity ? 'true' : undefined}
    >
      <span
        className="ei-MemoryBar-fill"
        style={{ width: `${(share * 100).toFixed(1)}%` }}
      />
    </span>
  );
}
