/**
 * The picker's hooks: the selection that follows the attachment, the first
 * model judged without %ei_inspect, the keyboard focus kept inside.
 */
import React, { useEffect, useRef, useState } from 'react';

import { IKernelState, KernelModel, Phase } from './model';
import { ISelection, attachedSelection, attachmentIdentity } from './selection';

/**
 * The user's selection, kept only while the attachment stays the same: any
 * attach or detach (here, in a magic, in the dashboard) resets it to mirror
 * what is attached.
 */
export function useSelection(
  state: IKernelState | null
): [ISelection | null, (selection: ISelection) => void] {
  const identity = attachmentIdentity(state);
  const [chosen, setChosen] = useState<{
    identity: string;
    selection: ISelection;
  } | null>(null);
  if (!state) {
    return [null, () => undefined];
  }
  const selection =
    chosen && chosen.identity === identity
      ? chosen.selection
      : attachedSelection(state);
  return [selection, s => setChosen({ identity, selection: s })];
}

/**
 * Judge fits by a model the kernel holds without waiting for %ei_inspect:
 * `ask` for the first one found, once per opening (the user can choose
 * another).
 */
export function useJudgeFirstModel(
  model: KernelModel,
  state: IKernelState | null,
  ask: () => void
): void {
  const asked = useRef(false);
  useEffect(() => {
    if (
      !asked.current &&
      model.phase === 'ready' &&
      state &&
      !state.model &&
      // one is being profiled already (or failed: asking again would fail again)
      !state.profiling &&
      state.models.length > 0
    ) {
      asked.current = true;
      ask();
    }
  }, [model.phase, state?.models.length, state?.model, state?.profiling]);
}

/**
 * Keep the keyboard focus inside the picker as its content changes: on the
 * row with the tab stop when the list appears, else on the first control.
 */
export function useKeepFocus(
  rootRef: React.RefObject<HTMLDivElement>,
  listRef: React.RefObject<HTMLDivElement>,
  activeKey: string,
  hasList: boolean,
  phase: Phase
): void {
  const hadList = useRef(false);
  useEffect(() => {
    const listAppeared = hasList && !hadList.current;
    hadList.current = hasList;
    const root = rootRef.current;
    if (!root) {
      return;
    }
    const dialogNode = root.closest('.jp-Dialog') ?? root;
    const active = document.activeElement;
    if (
      !listAppeared &&
      active &&
      dialogNode.contains(active) &&
      active !== document.body
    ) {
      return;
    }
    const target =
      (hasList &&
        listRef.current?.querySelector<HTMLElement>(
          `[data-key="${CSS.escape(activeKey)}"]`
        )) ||
      root.querySelector<HTMLElement>('button:not([disabled]), select') ||
      root;
    target.focus();
  }, [hasList, phase]);
}
