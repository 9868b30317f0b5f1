import { DefaultInstance } from '../defaultInstance';
import { KernelModel, Request } from '../model';
import { kernelState } from './fixture';

/** A model whose kernel answered, recording what it sends. */
function ready(): { model: KernelModel; sent: Request[] } {
  const sent: Request[] = [];
  const model = new KernelModel({ idPrefix: 't' });
  model.connecting(r => sent.push(r));
  model.handleMessage({
    v: 1,
    type: 'reply',
    id: 'open',
    state: kernelState('empty')
  });
  return { model, sent };
}

const instanceRequests = (sent: Request[]) =>
  sent.filter(r => r.type === 'set-instance');

describe('DefaultInstance', () => {
  it('sets the instance type once per kernel', () => {
    const defaults = new DefaultInstance();
    defaults.name = 'ml.m5.large';
    const { model, sent } = ready();
    defaults.apply(model, 'k1');
    expect(instanceRequests(sent)).toEqual([
      expect.objectContaining({ type: 'set-instance', instance: 'ml.m5.large' })
    ]);
    // The same kernel again (for example after the user chose another type).
    const again = ready();
    defaults.apply(again.model, 'k1');
    expect(instanceRequests(again.sent)).toEqual([]);
    // Another kernel gets it too.
    const other = ready();
    defaults.apply(other.model, 'k2');
    expect(instanceRequests(other.sent)).toHaveLength(1);
  });

  it('does nothing without a name, a kernel or a ready model', () => {
    const defaults = new DefaultInstance();
    const { model, sent } = ready();
    defaults.apply(model, 'k1');
    defaults.name = 'ml.m5.large';
    defaults.apply(model, undefined);
    const connecting = new KernelModel();
    connecting.connecting(r => sent.push(r));
    defaults.apply(connecting, 'k2');
    expect(instanceRequests(sent)).toEqual([]);
    // None of these used up the kernel's turn.
    defaults.apply(model, 'k1');
    expect(instanceRequests(sent)).toHaveLength(1);
  });

  it('leaves unknown and already-set instance types alone', () => {
    const current = kernelState('empty').instance.name;
    for (const name of ['ml.nonexistent', current]) {
      const defaults = new DefaultInstance();
      defaults.name = name;
      const { model, sent } = ready();
      defaults.apply(model, 'k1');
      expect(instanceRequests(sent)).toEqual([]);
    }
  });
});
