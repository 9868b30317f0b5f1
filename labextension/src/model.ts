/**
 * The picker's state for one kernel, free of any DOM or JupyterLab import so
 * that it can be tested on its own.
 *
 * The wire format is described in docs/protocol.md (version 1).
 */

/** Protocol version spoken by this front end. */
export const PROTOCOL_VERSION = 1;

/** The comm target registered by `%load_ext ei_widgets`. */
export const COMM_TARGET = 'ei_widgets';

/** The code the front end runs, on an explicit click, to load the extension. */
export const LOAD_CODE = '%load_ext ei_widgets';

/** Longest request id the kernel accepts. */
export const MAX_ID_LENGTH = 64;

export interface IInstanceInfo {
  name: string;
  vcpus: number | null;
  memory_gib: number | null;
  price_per_hour: number;
}

export interface IAcceleratorInfo {
  name: string;
  f32_tflops: number;
  f16_tflops: number;
  memory_gib: number;
  price_per_hour: number;
  fits: boolean | null;
  latency_ms: number | null;
  reason: string | null;
}

export interface IAttachedInfo {
  name: string;
  precision: string;
  since: string;
}

export interface ICostInfo {
  rate_per_hour: number;
  total: number;
  instance: number;
  accelerator: number;
}

export interface IKernelState {
  instance: IInstanceInfo;
  attached: IAttachedInfo | null;
  accelerators: IAcceleratorInfo[];
  instances: IInstanceInfo[];
  comparison: { name: string; price_per_hour: number } | null;
  model: { variable: string; kind: string } | null;
  cost: ICostInfo;
}

export type Precision = 'fp32' | 'fp16';

export type Request =
  | { v: 1; type: 'get-state'; id: string }
  | {
      v: 1;
      type: 'attach';
      id: string;
      accelerator: string;
      precision?: Precision;
    }
  | { v: 1; type: 'detach'; id: string }
  | { v: 1; type: 'set-instance'; id: string; instance: string };

export type KernelMessage =
  | { type: 'reply'; id: string; state: IKernelState }
  | { type: 'error'; id: string | null; error: string }
  | { type: 'state'; state: IKernelState };

/**
 * Where the connection to one kernel stands.
 *
 * - `no-kernel`: the notebook has no running kernel.
 * - `connecting`: a comm was opened and the kernel has not answered yet.
 * - `not-loaded`: the kernel closed the comm: `ei_widgets` is not loaded there.
 * - `ready`: the kernel answered; the state is current.
 * - `pending`: a request was sent and waits for its answer.
 * - `error`: the kernel refused the last request (see `error`).
 */
export type Phase =
  'no-kernel' | 'connecting' | 'not-loaded' | 'ready' | 'pending' | 'error';

/* ------------------------------------------------------------------ */
/* Formatting                                                          */
/* ------------------------------------------------------------------ */

/**
 * `0.336` -> `$0.336`, `12.5` -> `$12.50`, `0.000021` -> `$0.000021`: enough
 * digits to see a running cost move.
 */
export function formatMoney(value: number): string {
  if (!Number.isFinite(value)) {
    return '–';
  }
  const sign = value < 0 ? '-' : '';
  const v = Math.abs(value);
  let digits: number;
  if (v === 0 || v >= 1) {
    digits = 2;
  } else if (v >= 0.01) {
    digits = 3;
  } else {
    // Two significant digits, at most six decimals.
    digits = Math.min(6, Math.max(4, 1 - Math.floor(Math.log10(v))));
  }
  return `${sign}$${v.toFixed(digits)}`;
}

/** A price per hour: `$0.336/h`. */
export function formatRate(value: number): string {
  return `${formatMoney(value)}/h`;
}

/** A latency in milliseconds, or a dash when the kernel has no model. */
export function formatLatency(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) {
    return '–';
  }
  if (ms < 10) {
    return `${ms.toFixed(2)} ms`;
  }
  if (ms < 1000) {
    return `${ms.toFixed(1)} ms`;
  }
  return `${(ms / 1000).toFixed(2)} s`;
}

/** A memory size in GiB: `4 GB` (the catalog's own unit names). */
export function formatMemory(gib: number | null): string {
  if (gib === null || !Number.isFinite(gib)) {
    return '–';
  }
  return `${Number.isInteger(gib) ? gib : gib.toFixed(1)} GB`;
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/** Build a request, checking what the kernel would check anyway. */
export function buildRequest(type: 'get-state' | 'detach', id: string): Request;
export function buildRequest(
  type: 'attach',
  id: string,
  fields: { accelerator: string; precision?: Precision }
): Request;
export function buildRequest(
  type: 'set-instance',
  id: string,
  fields: { instance: string }
): Request;
export function buildRequest(
  type: Request['type'],
  id: string,
  fields: {
    accelerator?: string;
    precision?: Precision;
    instance?: string;
  } = {}
): Request {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) {
    throw new Error(`request id must be 1 to ${MAX_ID_LENGTH} characters`);
  }
  switch (type) {
    case 'get-state':
    case 'detach':
      return { v: PROTOCOL_VERSION, type, id };
    case 'attach': {
      if (!fields.accelerator) {
        throw new Error('attach needs an accelerator name');
      }
      const request: Request = {
        v: PROTOCOL_VERSION,
        type,
        id,
        accelerator: fields.accelerator
      };
      if (fields.precision) {
        if (fields.precision !== 'fp32' && fields.precision !== 'fp16') {
          throw new Error(`unknown precision ${fields.precision}`);
        }
        request.precision = fields.precision;
      }
      return request;
    }
    case 'set-instance':
      if (!fields.instance) {
        throw new Error('set-instance needs an instance name');
      }
      return { v: PROTOCOL_VERSION, type, id, instance: fields.instance };
    default:
      throw new Error(`unknown request type ${String(type)}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function numberOrNull(value: unknown): number | null {
  return isNumber(value) ? value : null;
}

function parseInstance(value: unknown): IInstanceInfo | null {
  if (!isObject(value) || typeof value.name !== 'string') {
    return null;
  }
  return {
    name: value.name,
    vcpus: numberOrNull(value.vcpus),
    memory_gib: numberOrNull(value.memory_gib),
    price_per_hour: isNumber(value.price_per_hour) ? value.price_per_hour : NaN
  };
}

function parseAccelerator(value: unknown): IAcceleratorInfo | null {
  if (!isObject(value) || typeof value.name !== 'string') {
    return null;
  }
  return {
    name: value.name,
    f32_tflops: isNumber(value.f32_tflops) ? value.f32_tflops : NaN,
    f16_tflops: isNumber(value.f16_tflops) ? value.f16_tflops : NaN,
    memory_gib: isNumber(value.memory_gib) ? value.memory_gib : NaN,
    price_per_hour: isNumber(value.price_per_hour) ? value.price_per_hour : NaN,
    fits: typeof value.fits === 'boolean' ? value.fits : null,
    latency_ms: numberOrNull(value.latency_ms),
    reason: typeof value.reason === 'string' ? value.reason : null
  };
}

/**
 * Read a STATE object, tolerating extra fields. Returns null when a field
 * the views rely on is missing.
 */
export function parseState(value: unknown): IKernelState | null {
  if (!isObject(value)) {
    return null;
  }
  const instance = parseInstance(value.instance);
  if (
    !instance ||
    !Array.isArray(value.accelerators) ||
    !isObject(value.cost)
  ) {
    return null;
  }
  const accelerators: IAcceleratorInfo[] = [];
  for (const item of value.accelerators) {
    const parsed = parseAccelerator(item);
    if (!parsed) {
      return null;
    }
    accelerators.push(parsed);
  }
  const instances: IInstanceInfo[] = [];
  if (Array.isArray(value.instances)) {
    for (const item of value.instances) {
      const parsed = parseInstance(item);
      if (parsed) {
        instances.push(parsed);
      }
    }
  }
  let attached: IAttachedInfo | null = null;
  if (isObject(value.attached)) {
    if (typeof value.attached.name !== 'string') {
      return null;
    }
    attached = {
      name: value.attached.name,
      precision:
        typeof value.attached.precision === 'string'
          ? value.attached.precision
          : 'fp32',
      since:
        typeof value.attached.since === 'string' ? value.attached.since : ''
    };
  } else if (value.attached !== null && value.attached !== undefined) {
    return null;
  }
  const cost = value.cost;
  if (!isNumber(cost.rate_per_hour) || !isNumber(cost.total)) {
    return null;
  }
  let comparison: IKernelState['comparison'] = null;
  if (
    isObject(value.comparison) &&
    typeof value.comparison.name === 'string' &&
    isNumber(value.comparison.price_per_hour)
  ) {
    comparison = {
      name: value.comparison.name,
      price_per_hour: value.comparison.price_per_hour
    };
  }
  let model: IKernelState['model'] = null;
  if (isObject(value.model) && typeof value.model.variable === 'string') {
    model = {
      variable: value.model.variable,
      kind: typeof value.model.kind === 'string' ? value.model.kind : ''
    };
  }
  return {
    instance,
    attached,
    accelerators,
    instances,
    comparison,
    model,
    cost: {
      rate_per_hour: cost.rate_per_hour,
      total: cost.total,
      instance: isNumber(cost.instance) ? cost.instance : 0,
      accelerator: isNumber(cost.accelerator) ? cost.accelerator : 0
    }
  };
}

/** Read a kernel → front end message; null for anything else. */
export function parseMessage(data: unknown): KernelMessage | null {
  if (!isObject(data) || data.v !== PROTOCOL_VERSION) {
    return null;
  }
  switch (data.type) {
    case 'reply': {
      const state = parseState(data.state);
      if (typeof data.id !== 'string' || !state) {
        return null;
      }
      return { type: 'reply', id: data.id, state };
    }
    case 'state': {
      const state = parseState(data.state);
      return state ? { type: 'state', state } : null;
    }
    case 'error': {
      if (typeof data.error !== 'string') {
        return null;
      }
      const id = typeof data.id === 'string' ? data.id : null;
      return { type: 'error', id, error: data.error };
    }
    default:
      return null;
  }
}

/* ------------------------------------------------------------------ */
/* The state machine                                                   */
/* ------------------------------------------------------------------ */

/** How the model sends a message: usually a comm's `send`. */
export type Sender = (data: Request) => void;

/** What a view shows of the model at one moment. */
export interface ISummary {
  phase: Phase;
  /** Short text for the status bar or toolbar. */
  label: string;
  /** Longer text for a tooltip and the accessible name. */
  title: string;
}

export interface IPendingRequest {
  id: string;
  type: Request['type'];
  /** Accelerator or instance the request is about, if any. */
  target: string | null;
}

/**
 * The picker's state for one notebook's kernel.
 *
 * The glue code calls `connecting`, `handleMessage`, `handleClose` and
 * `kernelGone` as the comm and the kernel come and go; views call
 * `attach`, `detach` and `setInstance` and listen with `changed`.
 */
export class KernelModel {
  constructor(options: { idPrefix?: string } = {}) {
    this._idPrefix = options.idPrefix ?? 'fe';
  }

  get phase(): Phase {
    return this._phase;
  }

  get state(): IKernelState | null {
    return this._state;
  }

  get error(): string | null {
    return this._error;
  }

  get pending(): ReadonlyArray<IPendingRequest> {
    return Array.from(this._pending.values());
  }

  /** True when requests can be sent. */
  get connected(): boolean {
    return this._sender !== null && this._answered;
  }

  /** Subscribe to changes; returns a function that unsubscribes. */
  changed(listener: () => void): () => void {
    this._listeners.add(listener);
    return () => {
      this._listeners.delete(listener);
    };
  }

  /**
   * A comm was opened (its open message carries the `get-state` request with
   * id `open`); `sender` sends later requests on it.
   */
  connecting(sender: Sender): void {
    this._sender = sender;
    this._answered = false;
    this._pending.clear();
    this._error = null;
    this._setPhase('connecting');
  }

  /** The notebook has no kernel (or it died or is restarting). */
  kernelGone(): void {
    this._sender = null;
    this._answered = false;
    this._pending.clear();
    this._state = null;
    this._error = null;
    this._setPhase('no-kernel');
  }

  /**
   * The comm was closed. Before any answer this means the kernel has no
   * `ei_widgets` target: the extension is not loaded there.
   */
  handleClose(): void {
    this._sender = null;
    this._answered = false;
    this._pending.clear();
    this._state = null;
    this._error = null;
    this._setPhase('not-loaded');
  }

  /** Handle a message from the kernel; returns false if it was not understood. */
  handleMessage(data: unknown): boolean {
    const message = parseMessage(data);
    if (!message) {
      return false;
    }
    this._answered = true;
    switch (message.type) {
      case 'state':
        this._state = message.state;
        if (this._phase === 'connecting') {
          this._phase = 'ready';
        }
        break;
      case 'reply':
        this._state = message.state;
        this._pending.delete(message.id);
        if (this._pending.size === 0) {
          this._phase = this._error !== null ? 'error' : 'ready';
        }
        break;
      case 'error':
        if (message.id !== null) {
          this._pending.delete(message.id);
        }
        this._error = message.error;
        this._phase = this._pending.size > 0 ? 'pending' : 'error';
        break;
    }
    this._emit();
    return true;
  }

  /** Ask the kernel to attach `accelerator`; returns the request id. */
  attach(accelerator: string, precision?: Precision): string {
    const id = this._nextId();
    return this._send(
      buildRequest('attach', id, { accelerator, precision }),
      accelerator
    );
  }

  /** Ask the kernel to detach; returns the request id. */
  detach(): string {
    return this._send(buildRequest('detach', this._nextId()), null);
  }

  /** Ask the kernel to change the notebook instance type. */
  setInstance(instance: string): string {
    return this._send(
      buildRequest('set-instance', this._nextId(), { instance }),
      instance
    );
  }

  /** Ask for the state again. */
  refresh(): string {
    return this._send(buildRequest('get-state', this._nextId()), null);
  }

  /** Forget a refused request's error (for example when the picker closes). */
  clearError(): void {
    if (this._phase === 'error') {
      this._error = null;
      this._setPhase(this._pending.size > 0 ? 'pending' : 'ready');
    }
  }

  /** What to show in the status bar or toolbar. */
  summary(): ISummary {
    return summarize(this._phase, this._state, this._error, this.pending);
  }

  private _send(request: Request, target: string | null): string {
    if (!this._sender || !this._answered) {
      throw new Error(
        this._phase === 'not-loaded'
          ? `ei_widgets is not loaded in this kernel: run ${LOAD_CODE}`
          : 'the kernel is not connected'
      );
    }
    this._pending.set(request.id, {
      id: request.id,
      type: request.type,
      target
    });
    this._error = null;
    this._phase = 'pending';
    this._sender(request);
    this._emit();
    return request.id;
  }

  private _nextId(): string {
    this._counter += 1;
    return `${this._idPrefix}-${this._counter}`;
  }

  private _setPhase(phase: Phase): void {
    this._phase = phase;
    this._emit();
  }

  private _emit(): void {
    for (const listener of Array.from(this._listeners)) {
      listener();
    }
  }

  private _idPrefix: string;
  private _counter = 0;
  private _phase: Phase = 'no-kernel';
  private _state: IKernelState | null = null;
  private _error: string | null = null;
  private _sender: Sender | null = null;
  private _answered = false;
  private _pending = new Map<string, IPendingRequest>();
  private _listeners = new Set<() => void>();
}

/** The status text for a phase and state. */
export function summarize(
  phase: Phase,
  state: IKernelState | null,
  error: string | null,
  pending: ReadonlyArray<IPendingRequest> = []
): ISummary {
  switch (phase) {
    case 'no-kernel':
      return {
        phase,
        label: 'EI: no kernel',
        title: 'Elastic Inference: this notebook has no running kernel'
      };
    case 'connecting':
      return {
        phase,
        label: 'EI: connecting…',
        title: 'Elastic Inference: waiting for the kernel to answer'
      };
    case 'not-loaded':
      return {
        phase,
        label: 'EI: not loaded',
        title: `Elastic Inference is not loaded in this kernel. Click to load it with ${LOAD_CODE}`
      };
    default:
      break;
  }
  if (!state) {
    return {
      phase,
      label: phase === 'error' ? 'EI: error' : 'EI: …',
      title: error ? `Elastic Inference: ${error}` : 'Elastic Inference'
    };
  }
  const name = state.attached ? state.attached.name : 'No accelerator';
  const money = `${formatRate(state.cost.rate_per_hour)} · ${formatMoney(state.cost.total)}`;
  let label = `EI: ${name} · ${money}`;
  let title =
    `Elastic Inference on ${state.instance.name}: ` +
    (state.attached
      ? `${state.attached.name} attached (${state.attached.precision})`
      : 'no accelerator attached') +
    `, ${formatRate(state.cost.rate_per_hour)}, ${formatMoney(state.cost.total)} so far`;
  if (phase === 'pending') {
    const first = pending[0];
    const what =
      first && first.type === 'attach' && first.target
        ? `attaching ${first.target}`
        : first && first.type === 'detach'
          ? 'detaching'
          : 'waiting for the kernel';
    label += ' · pending';
    title += `. Pending: ${what} (the kernel answers when the running cell ends)`;
  } else if (phase === 'error' && error) {
    label += ' · refused';
    title += `. Refused: ${error}`;
  }
  return { phase, label, title };
}
