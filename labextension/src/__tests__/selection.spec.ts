import { parseState } from '../model';
import {
  NONE_KEY,
  attachedSelection,
  attachmentIdentity,
  optionLabel,
  primaryAction
} from '../selection';
import { kernelState } from './fixture';

const judged = () => parseState(kernelState('judged'))!;
const empty = () => parseState(kernelState('empty'))!;

describe('the picker’s selection', () => {
  it('starts as what is attached, precision included', () => {
    expect(attachedSelection(judged())).toEqual({
      key: 'ml.eia2.medium',
      precision: 'fp16'
    });
    expect(attachedSelection(empty())).toEqual({
      key: NONE_KEY,
      precision: 'fp32'
    });
  });

  it('changes identity whenever the attachment changes', () => {
    const state = judged();
    const before = attachmentIdentity(state);
    expect(attachmentIdentity({ ...state })).toBe(before);
    const later = {
      ...state,
      attached: { ...state.attached!, since: '2026-11-28T12:00:05Z' }
    };
    expect(attachmentIdentity(later)).not.toBe(before);
    expect(attachmentIdentity(empty())).toBe('none');
    expect(attachmentIdentity(null)).toBe('none');
  });

  it('disables Attach when it would change nothing', () => {
    const state = judged();
    const action = primaryAction(attachedSelection(state), state);
    expect(action).toMatchObject({ kind: 'attach', disabled: true });
    expect(action.why).toMatch(/ml\.eia2\.medium at fp16 is attached/);
    const nothing = primaryAction(attachedSelection(empty()), empty());
    expect(nothing.disabled).toBe(true);
  });

  it('attaches another size or the same size at another precision', () => {
    const state = judged();
    expect(
      primaryAction({ key: 'ml.eia2.large', precision: 'fp16' }, state)
    ).toEqual({
      kind: 'attach',
      label: 'Attach ml.eia2.large (fp16)',
      disabled: false,
      why: null
    });
    expect(
      primaryAction({ key: 'ml.eia2.xlarge', precision: 'fp32' }, state)
        .disabled
    ).toBe(false);
  });

  it('refuses a size the model does not fit, with the kernel’s reason', () => {
    const action = primaryAction(
      { key: 'ml.eia2.medium', precision: 'fp32' },
      judged()
    );
    expect(action.disabled).toBe(true);
    expect(action.why).toMatch(/does not fit ml\.eia2\.medium at fp32: needs/);
  });

  it('turns "None" into a detach that asks first', () => {
    const action = primaryAction(
      { key: NONE_KEY, precision: 'fp32' },
      judged()
    );
    expect(action).toMatchObject({
      kind: 'detach',
      label: 'Detach ml.eia2.medium…',
      disabled: false
    });
  });

  it('names each row with its figures at the chosen precision', () => {
    const state = judged();
    const medium = state.accelerators.find(a => a.name === 'ml.eia2.medium')!;
    const fp16 = optionLabel(medium, state, 'fp16', {
      selected: true,
      attached: true
    });
    expect(fp16).toMatch(/^ml\.eia2\.medium, attached, selected: 1 F32/);
    expect(fp16).toMatch(/fits the model, estimated latency at fp16 \d/);
    const fp32 = optionLabel(medium, state, 'fp32', {
      selected: false,
      attached: true
    });
    expect(fp32).toMatch(/does not fit: needs/);
    expect(
      optionLabel(null, state, 'fp32', { selected: false, attached: false })
    ).toMatch(/^No accelerator: the instance alone, \$0\.0/);
  });
});
