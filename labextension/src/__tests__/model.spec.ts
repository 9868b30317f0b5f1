import {
  IKernelState,
  KernelModel,
  MAX_ID_LENGTH,
  Request,
  buildRequest,
  isProfiling,
  parseMessage,
  parseState,
  profilingStatus,
  summarize
} from '../model';
import { kernelState } from './fixture';

/** The state the kernel sends with nothing attached and no model. */
function makeState(overrides: Partial<IKernelState> = {}): any {
  return { ...kernelState('empty'), ...overrides };
}

/** ml.eia2.medium attached at fp16, a model judged, two models found. */
const attachedState = () => kernelState('judged');

/** A model connected to a recording sender, past the open handshake. */
function connected(): { model: KernelModel; sent: Request[] } {
  const sent: Request[] = [];
  const model = new KernelModel({ idPrefix: 't' });
  model.connecting(r => sent.push(r));
  model.handleMessage({ v: 1, type: 'reply', id: 'open', state: makeState() });
  return { model, sent };
}

describe('buildRequest', () => {
  it('builds each request type', () => {
    expect(buildRequest('get-state', 'a')).toEqual({
      v: 1,
      type: 'get-state',
      id: 'a'
    });
    expect(buildRequest('detach', 'b')).toEqual({
      v: 1,
      type: 'detach',
      id: 'b'
    });
    expect(
      buildRequest('attach', 'c', { accelerator: 'ml.eia2.large' })
    ).toEqual({
      v: 1,
      type: 'attach',
      id: 'c',
      accelerator: 'ml.eia2.large'
    });
    expect(
      buildRequest('attach', 'c', {
        accelerator: 'ml.eia2.large',
        precision: 'fp16'
      })
    ).toEqual({
      v: 1,
      type: 'attach',
      id: 'c',
      accelerator: 'ml.eia2.large',
      precision: 'fp16'
    });
    expect(
      buildRequest('set-instance', 'd', { instance: 'ml.m5.large' })
    ).toEqual({
      v: 1,
      type: 'set-instance',
      id: 'd',
      instance: 'ml.m5.large'
    });
  });

  it('rejects what the kernel would reject', () => {
    expect(() => buildRequest('get-state', '')).toThrow();
    expect(() =>
      buildRequest('get-state', 'x'.repeat(MAX_ID_LENGTH + 1))
    ).toThrow();
    expect(() => buildRequest('attach', 'a', { accelerator: '' })).toThrow();
    expect(() =>
      buildRequest('attach', 'a', {
        accelerator: 'x',
        precision: 'int8' as any
      })
    ).toThrow();
    expect(() => buildRequest('set-instance', 'a', { instance: '' })).toThrow();
    expect(() => buildRequest('set-model', 'a', { variable: '' })).toThrow();
    expect(() => buildRequest('launch' as any, 'a')).toThrow();
  });
});

describe('parsing', () => {
  it('reads the state the kernel builds', () => {
    const state = parseState(attachedState());
    expect(state).not.toBeNull();
    expect(state!.accelerators.map(a => a.name)).toContain('ml.eia2.large');
    expect(state!.attached).toEqual({
      name: 'ml.eia2.medium',
      precision: 'fp16',
      since: '2026-11-28T12:00:00Z'
    });
    expect(state!.model).toEqual({ variable: 'big', kind: 'onnx-model' });
    expect(state!.models.map(m => m.variable)).toEqual(['big_net', 'small']);
    expect(state!.models[0].summary).toMatch(/ONNX model/);
    expect(state!.latency_accuracy).toEqual(attachedState().latency_accuracy);
    expect(state!.cost.metered).toBe(false);
    expect(state!.comparison).toEqual({
      name: 'ml.g4dn.xlarge',
      price_per_hour: 0.736
    });
  });

  it('reads both precisions, the top-level at the attached one', () => {
    const state = parseState(attachedState())!;
    const medium = state.accelerators.find(a => a.name === 'ml.eia2.medium')!;
    expect(medium.estimates.fp32.fits).toBe(false);
    expect(medium.estimates.fp32.reason).toMatch(/needs .* GiB/);
    expect(medium.estimates.fp16.fits).toBe(true);
    expect(medium.estimates.fp16.latency_ms!).toBeLessThan(
      medium.estimates.fp32.latency_ms!
    );
    expect(medium.estimates.fp16.memory_bytes!).toBeGreaterThan(0);
    expect(medium.latency_ms).toBe(medium.estimates.fp16.latency_ms);
  });

  it('tolerates an older kernel: no estimates, no models, extra fields', () => {
    const raw = makeState({ model: null, comparison: null });
    raw.accelerators[1].fits = null;
    raw.accelerators[1].latency_ms = null;
    delete raw.accelerators[1].estimates;
    delete raw.models;
    delete raw.latency_accuracy;
    delete raw.cost.metered;
    raw.extra = 'ignored';
    const state = parseState(raw)!;
    expect(state.model).toBeNull();
    expect(state.models).toEqual([]);
    expect(state.latency_accuracy).toBeNull();
    expect(state.cost.metered).toBe(false);
    expect(state.comparison).toBeNull();
    expect(state.accelerators[1].fits).toBeNull();
    expect(state.accelerators[1].estimates.fp16.fits).toBeNull();
  });

  it('reads the sequence length a transformer is judged at', () => {
    const state = parseState(kernelState('transformer'))!;
    expect(state.model).toEqual({ variable: 'encoder', kind: 'onnx-model' });
    expect(state.sequence).toEqual({
      seq_len: 256,
      lengths: [64, 128, 256, 512]
    });
    // A model without a sequence dimension, and an older kernel, have none.
    expect(parseState(attachedState())!.sequence).toBeNull();
    const older = kernelState('transformer');
    delete older.sequence;
    expect(parseState(older)!.sequence).toBeNull();
    // A garbled list still offers the length it is judged at.
    const garbled = kernelState('transformer');
    garbled.sequence.lengths = ['64', -1];
    expect(parseState(garbled)!.sequence!.lengths).toEqual([256]);
  });

  it('reads the profile being made and the last one’s failure', () => {
    expect(parseState(attachedState())!.profiling).toBeNull();
    expect(isProfiling(parseState(attachedState()))).toBe(false);
    const running = parseState(kernelState('profiling'))!;
    expect(running.profiling).toEqual({
      variable: 'big_net',
      seq_len: null,
      stage: 'converting',
      progress: 0.4,
      error: null
    });
    expect(isProfiling(running)).toBe(true);
    const failed = parseState(kernelState('failed'))!;
    expect(failed.profiling!.error).toMatch(
      /^Could not profile big_net: .*pip install tf2onnx$/
    );
    expect(isProfiling(failed)).toBe(false);
  });

  it('refuses a malformed state', () => {
    expect(parseState(null)).toBeNull();
    expect(parseState([])).toBeNull();
    expect(parseState({ ...makeState(), instance: 'ml.t3.medium' })).toBeNull();
    expect(parseState({ ...makeState(), accelerators: [1] })).toBeNull();
    expect(parseState({ ...makeState(), cost: { total: 'x' } })).toBeNull();
    expect(
      parseState({ ...makeState(), attached: 'ml.eia2.large' })
    ).toBeNull();
  });

  it('reads replies, errors and pushes, and nothing else', () => {
    expect(
      parseMessage({ v: 1, type: 'reply', id: 'x', state: makeState() })
    ).toMatchObject({
      type: 'reply',
      id: 'x'
    });
    expect(
      parseMessage({ v: 1, type: 'state', state: makeState() })
    ).toMatchObject({
      type: 'state'
    });
    expect(
      parseMessage({ v: 1, type: 'error', id: null, error: 'bad' })
    ).toEqual({
      type: 'error',
      id: null,
      error: 'bad'
    });
    expect(
      parseMessage({ v: 2, type: 'state', state: makeState() })
    ).toBeNull();
    expect(
      parseMessage({ v: 1, type: 'reply', state: makeState() })
    ).toBeNull();
    expect(parseMessage({ v: 1, type: 'error', id: 'x' })).toBeNull();
    expect(parseMessage({ v: 1, type: 'attach', id: 'x' })).toBeNull();
    expect(parseMessage('{"v":1}')).toBeNull();
    expect(parseMessage(undefined)).toBeNull();
  });
});

describe('KernelModel', () => {
  it('starts without a kernel and connects', () => {
    const model = new KernelModel();
    expect(model.phase).toBe('no-kernel');
    model.connecting(() => undefined);
    expect(model.phase).toBe('connecting');
    expect(model.connected).toBe(false);
    expect(
      model.handleMessage({
        v: 1,
        type: 'reply',
        id: 'open',
        state: makeState()
      })
    ).toBe(true);
    expect(model.phase).toBe('ready');
    expect(model.connected).toBe(true);
    expect(model.state!.instance.name).toBe('ml.t3.medium');
  });

  it('treats a close before any answer as "not loaded"', () => {
    const model = new KernelModel();
    const seen: string[] = [];
    model.changed(() => seen.push(model.phase));
    model.connecting(() => undefined);
    model.handleClose();
    expect(model.phase).toBe('not-loaded');
    expect(seen).toEqual(['connecting', 'not-loaded']);
    expect(() => model.attach('ml.eia2.large')).toThrow(/%load_ext ei_widgets/);
    expect(model.summary().label).toBe('EI: not loaded');
  });

  it('refuses to send before the kernel answered', () => {
    const model = new KernelModel();
    expect(() => model.detach()).toThrow(/not connected/);
    model.connecting(() => undefined);
    expect(() => model.detach()).toThrow(/not connected/);
  });

  it('is pending until the kernel answers an attach', () => {
    const { model, sent } = connected();
    const id = model.attach('ml.eia2.large');
    expect(sent).toEqual([
      { v: 1, type: 'attach', id, accelerator: 'ml.eia2.large' }
    ]);
    expect(model.phase).toBe('pending');
    expect(model.summary().note).toBe('pending');
    expect(model.summary().title).toContain('attaching ml.eia2.large');
    // A periodic push while the cell runs does not end the wait.
    model.handleMessage({ v: 1, type: 'state', state: makeState() });
    expect(model.phase).toBe('pending');
    model.handleMessage({ v: 1, type: 'reply', id, state: attachedState() });
    expect(model.phase).toBe('ready');
    expect(model.state!.attached!.name).toBe('ml.eia2.medium');
    expect(model.summary().label).toBe('EI: ml.eia2.medium · fp16');
    expect(model.summary().note).toBeNull();
  });

  it('shows the kernel’s refusal until the next request', () => {
    const { model } = connected();
    const id = model.attach('ml.eia2.medium');
    model.handleMessage({
      v: 1,
      type: 'error',
      id,
      error: 'the model does not fit ml.eia2.medium; ml.eia2.large would'
    });
    expect(model.phase).toBe('error');
    expect(model.error).toMatch(/does not fit/);
    expect(model.summary().note).toBe('refused');
    expect(model.summary().title).toContain('does not fit');
    model.handleMessage({ v: 1, type: 'state', state: makeState() });
    expect(model.phase).toBe('error');
    const next = model.attach('ml.eia2.large');
    expect(model.error).toBeNull();
    model.handleMessage({
      v: 1,
      type: 'reply',
      id: next,
      state: attachedState()
    });
    expect(model.phase).toBe('ready');
  });

  it('clears an error on request', () => {
    const { model } = connected();
    model.handleMessage({
      v: 1,
      type: 'error',
      id: null,
      error: 'bad message'
    });
    expect(model.phase).toBe('error');
    model.clearError();
    expect(model.phase).toBe('ready');
    expect(model.error).toBeNull();
  });

  it('keeps waiting while another request is still pending', () => {
    const { model } = connected();
    const a = model.attach('ml.eia2.medium');
    const b = model.detach();
    model.handleMessage({ v: 1, type: 'error', id: a, error: 'no' });
    expect(model.phase).toBe('pending');
    expect(model.pending.map(p => p.id)).toEqual([b]);
    model.handleMessage({ v: 1, type: 'reply', id: b, state: makeState() });
    expect(model.phase).toBe('error');
  });

  it('follows pushes from other views', () => {
    const { model } = connected();
    let changes = 0;
    const unsubscribe = model.changed(() => (changes += 1));
    model.handleMessage({ v: 1, type: 'state', state: attachedState() });
    expect(model.state!.attached!.name).toBe('ml.eia2.medium');
    expect(model.phase).toBe('ready');
    unsubscribe();
    model.handleMessage({ v: 1, type: 'state', state: makeState() });
    expect(changes).toBe(1);
  });

  it('ignores what it does not understand', () => {
    const { model } = connected();
    expect(model.handleMessage({ v: 1, type: 'state', state: {} })).toBe(false);
    expect(model.handleMessage({ type: 'state', state: makeState() })).toBe(
      false
    );
    expect(model.phase).toBe('ready');
  });

  it('sends detach, set-instance, set-model and get-state with fresh ids', () => {
    const { model, sent } = connected();
    const ids = [
      model.detach(),
      model.setInstance('ml.m5.large'),
      model.setModel('small'),
      model.refresh()
    ];
    expect(new Set(ids).size).toBe(4);
    expect(sent.map(r => r.type)).toEqual([
      'detach',
      'set-instance',
      'set-model',
      'get-state'
    ]);
    expect(sent[1]).toMatchObject({ instance: 'ml.m5.large' });
    expect(sent[2]).toMatchObject({ variable: 'small' });
    const other = connected().model;
    other.setModel('big_net');
    expect(other.summary().title).toContain('judging fits by big_net');
    expect(ids.every(id => id.startsWith('t-'))).toBe(true);
  });

  it('sends set-seq-len, checked as the kernel checks it', () => {
    const { model, sent } = connected();
    model.setSeqLen(512);
    expect(sent[0]).toEqual({
      v: 1,
      type: 'set-seq-len',
      id: 't-1',
      seq_len: 512
    });
    expect(model.summary().title).toContain('changing the sequence length');
    for (const bad of [0, -128, 1.5, NaN, 65537]) {
      expect(() => model.setSeqLen(bad)).toThrow(/whole number of tokens/);
    }
    expect(sent).toHaveLength(1);
  });

  it('forgets everything when the kernel goes, and reconnects', () => {
    const { model } = connected();
    model.attach('ml.eia2.large');
    model.kernelGone();
    expect(model.phase).toBe('no-kernel');
    expect(model.state).toBeNull();
    expect(model.pending).toEqual([]);
    model.connecting(() => undefined);
    model.handleClose();
    expect(model.phase).toBe('not-loaded');
  });

  it('summarizes each phase', () => {
    expect(summarize('no-kernel', null, null).label).toBe('EI: no kernel');
    expect(summarize('connecting', null, null).label).toBe('EI: connecting…');
    expect(summarize('error', null, 'boom').title).toContain('boom');
    const ready = summarize('ready', parseState(makeState()), null);
    expect(ready.label).toBe('EI: No accelerator');
    expect(ready.title).toContain('ml.t3.medium');
    expect(ready.title).toContain('$0.05/h, $0.00 so far');
    const detaching = summarize('pending', parseState(attachedState()), null, [
      { id: 'x', type: 'detach', target: null }
    ]);
    expect(detaching.title).toContain('detaching');
  });

  it('ticks the cost between pushes at the kernel’s rate', () => {
    let now = 1_000_000;
    const model = new KernelModel({ now: () => now });
    model.connecting(() => undefined);
    const state = makeState();
    state.cost = {
      ...state.cost,
      total: 0.01,
      rate_per_hour: 0.36,
      metered: true
    };
    model.handleMessage({ v: 1, type: 'reply', id: 'open', state });
    expect(model.costNow()).toBeCloseTo(0.01, 12);
    now += 1000;
    expect(model.costNow()).toBeCloseTo(0.0101, 12);
    // The next push is the truth again.
    state.cost = { ...state.cost, total: 0.0102 };
    model.handleMessage({ v: 1, type: 'state', state });
    expect(model.costNow()).toBeCloseTo(0.0102, 12);
  });
});

describe('profilingStatus', () => {
  it('says which model is profiled, at which stage and how far', () => {
    const running = parseState(kernelState('profiling'))!.profiling!;
    expect(profilingStatus(running)).toEqual({
      text: 'profiling big_net (converting, 40%)…',
      percentage: 40,
      failed: false
    });
    expect(
      profilingStatus({ ...running, stage: null, progress: null, seq_len: 512 })
    ).toEqual({
      text: 'profiling big_net (at 512 tokens)…',
      percentage: null,
      failed: false
    });
    expect(
      profilingStatus({ ...running, stage: null, progress: null }).text
    ).toBe('profiling big_net…');
  });

  it('says why it failed', () => {
    const failed = parseState(kernelState('failed'))!.profiling!;
    expect(profilingStatus(failed)).toEqual({
      text: failed.error,
      percentage: null,
      failed: true
    });
  });

  it('reaches the status bar’s tooltip', () => {
    const state = parseState(kernelState('profiling'))!;
    expect(summarize('ready', state, null).title).toContain(
      'profiling big_net (converting, 40%)…'
    );
  });
});
