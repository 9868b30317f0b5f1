/**
 * The fixture the kernel's own code wrote (`python -m tests.notebook.test_comm`):
 * states built by `ei_widgets.notebook.picker_state.build_state` and figures formatted by the
 * kernel's formatters. Both halves of docs/protocol.md test against it.
 */
import fixture from './fixtures/protocol.json';

export type FormatKind =
  'money' | 'bytes' | 'count' | 'ms' | 'rate' | 'percent';

/** A fresh copy of a state the kernel built (tests may change it). */
export function kernelState(
  name: 'empty' | 'judged' | 'profiling' | 'failed' | 'transformer'
): any {
  return JSON.parse(JSON.stringify(fixture.states[name]));
}

/** `[value, as the kernel formats it]` pairs. */
export function formatted(kind: FormatKind): Array<[number, string]> {
  return fixture.formats[kind] as Array<[number, string]>;
}
