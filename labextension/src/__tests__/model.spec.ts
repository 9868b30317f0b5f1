import {
  IKernelState,
  KernelModel,
  MAX_ID_LENGTH,
  Request,
  buildRequest,
  formatLatency,
  formatMemory,
  formatMoney,
  formatRate,
  parseMessage,
  parseState,
  summarize
} from '../model';

function makeState(overrides: Partial<IKernelState> = {}): any {
  return {
    instance: {
      name: 'ml.t3.medium',
      vcpus: 2,
      memory_gib: 4,
      price_per_hour: 0.05
    },
    attached: null,
    accelerators: [
      {
        name: 'ml.eia2.medium',
        f32_tflops: 1,
        f16_tflops: 8,
        memory_gib: 2,
        price_per_hour: 0.168,
        fits: false,
        latency_ms: null,
        reason: 'needs 3.1 GB, has 2 GB'
      },
      {
        name: 'ml.eia2.large',
        f32_tflops: 2,
        f16_tflops: 16,
        memory_gib: 4,
        price_per_hour: 0.336,
        fits: true,
        latency_ms: 3.1,
        reason: null
      }
    ],
    instances: [
      { name: 'ml.t3.medium', vcpus: 2, memory_gib: 4, price_per_hour: 0.05 },
      { name: 'ml.m5.large', vcpus: 2, memory_gib: 8, price_per_hour: 0.115 }
    ],
    comparison: { name: 'ml.g4dn.xlarge', price_per_hour: 0.736 },
    model: { variable: 'model', kind: 'onnx' },
    cost: {
      rate_per_hour: 0.05,
      total: 0.0012,
      instance: 0.0012,
      accelerator: 0
    },
    ...overrides
  };
}

const attachedState = () =>
  makeState({
    attached: {
      name: 'ml.eia2.large',
      precision: 'fp32',
      since: '2026-11-28T16:00:00Z'
    },
    cost: {
      rate_per_hour: 0.386,
      total: 0.01,
      instance: 0.005,
      accelerator: 0.005
    }
  });

/** A model connected to a recording sender, past the open handshake. */
function connected(): { model: KernelModel; sent: Request[] } {
  const sent: Request[] = [];
  const model = new KernelModel({ idPrefix: 't' });
  model.connecting(r => sent.push(r));
  model.handleMessage({ v: 1, type: 'reply', id: 'open', state: makeState() });
  return { model, sent };
}

describe('formatting', () => {
  it('formats money with enough digits to see it move', () => {
    expect(formatMoney(0)).toBe('$0.00');
    expect(formatMoney(0.0012)).toBe('$0.0012');
    expect(formatMoney(0.000021)).toBe('$0.000021');
    expect(formatMoney(0.0000001)).toBe('$0.000000');
    expect(formatMoney(0.336)).toBe('$0.336');
    expect(formatMoney(12.5)).toBe('$12.50');
    expect(formatMoney(-0.5)).toBe('-$0.500');
    expect(formatMoney(NaN)).toBe('–');
    expect(formatRate(0.05)).toBe('$0.050/h');
  });

  it('formats latency and memory', () => {
    expect(formatLatency(null)).toBe('–');
    expect(formatLatency(3.14159)).toBe('3.14 ms');
    expect(formatLatency(42.25)).toBe('42.3 ms');
    expect(formatLatency(2500)).toBe('2.50 s');
    expect(formatMemory(4)).toBe('4 GB');
    expect(formatMemory(1.5)).toBe('1.5 GB');
    expect(formatMemory(null)).toBe('–');
  });
});

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
    expect(() => buildRequest('launch' as any, 'a')).toThrow();
  });
});

describe('parsing', () => {
  it('reads the documented state', () => {
    const state = parseState(makeState());
    expect(state).not.toBeNull();
    expect(state!.accelerators.map(a => a.name)).toEqual([
      'ml.eia2.medium',
      'ml.eia2.large'
    ]);
    expect(state!.accelerators[0].fits).toBe(false);
    expect(state!.comparison).toEqual({
      name: 'ml.g4dn.xlarge',
      price_per_hour: 0.736
    });
  });

  it('tolerates a kernel without a model and extra fields', () => {
    const raw = makeState({ model: null, comparison: null });
    raw.accelerators[1].fits = null;
    raw.accelerators[1].latency_ms = null;
    raw.extra = 'ignored';
    const state = parseState(raw)!;
    expect(state.model).toBeNull();
    expect(state.comparison).toBeNull();
    expect(state.accelerators[1].fits).toBeNull();
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
    expect(model.summary().label).toContain('pending');
    expect(model.summary().title).toContain('attaching ml.eia2.large');
    // A periodic push while the cell runs does not end the wait.
    model.handleMessage({ v: 1, type: 'state', state: makeState() });
    expect(model.phase).toBe('pending');
    model.handleMessage({ v: 1, type: 'reply', id, state: attachedState() });
    expect(model.phase).toBe('ready');
    expect(model.state!.attached!.name).toBe('ml.eia2.large');
    expect(model.summary().label).toBe('EI: ml.eia2.large · $0.386/h · $0.010');
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
    expect(model.summary().label).toContain('refused');
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
    expect(model.state!.attached!.name).toBe('ml.eia2.large');
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

  it('sends detach, set-instance and get-state with fresh ids', () => {
    const { model, sent } = connected();
    const ids = [
      model.detach(),
      model.setInstance('ml.m5.large'),
      model.refresh()
    ];
    expect(new Set(ids).size).toBe(3);
    expect(sent.map(r => r.type)).toEqual([
      'detach',
      'set-instance',
      'get-state'
    ]);
    expect(sent[1]).toMatchObject({ instance: 'ml.m5.large' });
    expect(ids.every(id => id.startsWith('t-'))).toBe(true);
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
    expect(ready.label).toBe('EI: No accelerator · $0.050/h · $0.0012');
    expect(ready.title).toContain('ml.t3.medium');
    const detaching = summarize('pending', parseState(attachedState()), null, [
      { id: 'x', type: 'detach', target: null }
    ]);
    expect(detaching.title).toContain('detaching');
  });
});
