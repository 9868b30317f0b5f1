/**
 * React hooks the views share: follow a kernel model, tick with the clock.
 */
import { useEffect, useState } from 'react';

import { KernelModel } from './model';

/**
 * Re-render on model changes: at once when the phase changes, otherwise at
 * most once per `intervalSeconds` (the kernel pushes the state every second).
 */
export function useModel(
  model: KernelModel | null,
  intervalSeconds: number
): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!model) {
      return;
    }
    let lastPhase = model.phase;
    let last = 0;
    let timer: number | null = null;
    const interval = Math.max(0.2, intervalSeconds) * 1000;
    const render = () => {
      timer = null;
      last = Date.now();
      lastPhase = model.phase;
      setTick(t => t + 1);
    };
    const unsubscribe = model.changed(() => {
      if (model.phase !== lastPhase || Date.now() - last >= interval) {
        if (timer !== null) {
          window.clearTimeout(timer);
        }
        render();
      } else if (timer === null) {
        timer = window.setTimeout(render, interval - (Date.now() - last));
      }
    });
    render();
    return () => {
      unsubscribe();
      if (timer !== null) {
        window.clearTimeout(timer);
      }
    };
  }, [model, intervalSeconds]);
  return tick;
}

/** Re-render every `intervalSeconds` while `active` (the ticking cost). */
export function useClock(active: boolean, intervalSeconds: number): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!active) {
      return;
    }
    const timer = window.setInterval(
      () => setTick(t => t + 1),
      Math.max(0.2, intervalSeconds) * 1000
    );
    return () => window.clearInterval(timer);
  }, [active, intervalSeconds]);
  return tick;
}
