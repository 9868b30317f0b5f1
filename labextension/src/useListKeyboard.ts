/**
 * Keyboard use of a listbox of rows: arrows, Home and End move the focus
 * (one tab stop for the whole list); Enter and Space choose the focused row.
 */
import React, { useRef, useState } from 'react';

export interface IListKeyboard {
  /** The row holding the tab stop. */
  activeKey: string;
  listRef: React.RefObject<HTMLDivElement>;
  /** Give a row the focus (and the tab stop). */
  focusRow: (key: string) => void;
  onKeyDown: (event: React.KeyboardEvent, index: number) => void;
  onFocus: (key: string) => void;
}

/**
 * @param keys - the rows' keys, in order
 * @param fallbackKey - the row with the tab stop until one is focused
 * @param choose - what Enter and Space do with a row
 */
export function useListKeyboard(
  keys: ReadonlyArray<string>,
  fallbackKey: string,
  choose: (key: string) => void
): IListKeyboard {
  const listRef = useRef<HTMLDivElement>(null);
  const [focusKey, setFocusKey] = useState<string | null>(null);
  const activeKey =
    focusKey && keys.includes(focusKey) ? focusKey : fallbackKey;

  const focusRow = (key: string) => {
    setFocusKey(key);
    listRef.current
      ?.querySelector<HTMLElement>(`[data-key="${CSS.escape(key)}"]`)
      ?.focus();
  };
  const moveTo = (index: number) =>
    focusRow(keys[(index + keys.length) % keys.length]);

  const onKeyDown = (event: React.KeyboardEvent, index: number) => {
    switch (event.key) {
      case 'ArrowDown':
      case 'ArrowRight':
        moveTo(index + 1);
        break;
      case 'ArrowUp':
      case 'ArrowLeft':
        moveTo(index - 1);
        break;
      case 'Home':
        moveTo(0);
        break;
      case 'End':
        moveTo(keys.length - 1);
        break;
      case 'Enter':
      case ' ':
        choose(keys[index]);
        break;
      default:
        return;
    }
    event.preventDefault();
  };

  return { activeKey, listRef, focusRow, onKeyDown, onFocus: setFocusKey };
}
