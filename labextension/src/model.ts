/**
 * The picker's state for one kernel, free of any DOM or JupyterLab import so
 * that it can be tested on its own.
 *
 * The wire format is described in docs/protocol.md (version 1).
 */
import { formatMoney, formatPrice } from './format';
import { CostTicker } from './ticker';

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

export type Precision = 'fp32' | 'fp16';

export const PRECISIONS: ReadonlyArray<Precision> = ['fp32', 'fp16'];

/** What the kernel's latency model says of one accelerator at one precision. */
export interface IEstimate {
  /** null when the kernel has no model to judge by. */
  fits: boolean | null;
  latency_ms: number | null;
  /** Why it does not fit, or why it cannot be judged. */
  reason: string | null;
  /** Accelerator memory the model needs. */
  memory_bytes: number | null;
}

export interface IAcceleratorInfo extends IEstimate {
  name: string;
  f32_tflops: number;
  f16_tflops: number;
  memory_gib: number;
  price_per_hour: number;
  /** Both precisions (the top-level fields are at the attached one). */
  estimates: Record<Precision, IEstimate>;
}

/** A model found in the kernel's variables (as `%ei_status` lists them). */
export interface IModelEntry {
  variable: string;
  kind: string;
  summary: string;
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
  /** True when the kernel runs a meter: the total grows at the rate. */
  metered: boolean;
}

/** The length a transformer is judged at, and the lengths it can be. */
export interface ISequenceInfo {
  seq_len: number;
  lengths: number[];
}

/**
 * A profile being made in the kernel for `set-model` or `set-seq-len`, or
 * why the last one failed (`error` set).
 */
export interface IProfilingInfo {
  variable: string;
  /** The length asked; null for the model's default. */
  seq_len: number | null;
  /** The conversion's stage, when the model is converted to ONNX. */
  stage: string | null;
  /** 0..1 of the conversion, when known. */
  progress: number | null;
  error: string | null;
}

export interface IKernelState {
  instance: IInstanceInfo;
  attached: IAttachedInfo | null;
  accelerators: IAcceleratorInfo[];
  instances: IInstanceInfo[];
  comparison: { name: string; price_per_hour: number } | null;
  /** The model fits and latencies are judged by, or null. */
  model: { variable: string; kind: string } | null;
  /** Null unless the judged model has a sequence dimension. */
  sequence: ISequenceInfo | null;
  /** Null unless a profile is being made or the last one failed. */
  profiling: IProfilingInfo | null;
  /** The models found in the kernel's variables. */
  models: IModelEntry[];
  /** The latency model's stated accuracy, when the kernel has one. */
  latency_accuracy: string | null;
  cost: ICostInfo;
}

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
  | { v: 1; type: 'set-instance'; id: string; instance: string }
  | { v: 1; type: 'set-model'; id: string; variable: string }
  | { v: 1; type: 'set-seq-len'; id: string; seq_len: number };

/** Longest sequence the kernel accepts in `set-seq-len`. */
export const MAX_SEQ_LEN = 65536;

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
  type: 'set-model',
  id: string,
  fields: { variable: string }
): Request;
export function buildRequest(
  type: 'set-seq-len',
  id: string,
  fields: { seq_len: number }
): Request;
export function buildRequest(
  type: Request['type'],
  id: string,
  fields: {
    accelerator?: string;
    precision?: Precision;
    instance?: string;
    variable?: string;
    seq_len?: number;
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
    case 'set-model':
      if (!fields.variable) {
        throw new Error('set-model needs a variable name');
      }
      return { v: PROTOCOL_VERSION, type, id, variable: fields.variable };
    case 'set-seq-len': {
      const n = fields.seq_len;
      if (
        typeof n !== 'number' ||
        !Number.isInteger(n) ||
        n < 1 ||
        n > MAX_SEQ_LEN
      ) {
        throw new Error(
          `set-seq-len needs a whole number of tokens from 1 to ${MAX_SEQ_LEN}`
        );
      }
      return { v: PROTOCOL_VERSION, type, id, seq_len: n };
    }
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

function parseEstimate(value: Record<string, unknown>): IEstimate {
  return {
    fits: typeof value.fits === 'boolean' ? value.fits : null,
    latency_ms: numberOrNull(value.latency_ms),
    reason: typeof value.reason === 'string' ? value.reason : null,
    memory_bytes: numberOrNull(value.memory_bytes)
  };
}

function parseAccelerator(value: unknown): IAcceleratorInfo | null {
  if (!isObject(value) || typeof value.name !== 'string') {
    return null;
  }
  const top = parseEstimate(value);
  const given = isObject(value.estimates) ? value.estimates : {};
  // A kernel without per-precision estimates: the top-level ones for both.
  const estimate = (p: Precision) =>
    isObject(given[p])
      ? parseEstimate(given[p] as Record<string, unknown>)
      : top;
  return {
    name: value.name,
    f32_tflops: isNumber(value.f32_tflops) ? value.f32_tflops : NaN,
    f16_tflops: isNumber(value.f16_tflops) ? value.f16_tflops : NaN,
    memory_gib: isNumber(value.memory_gib) ? value.memory_gib : NaN,
    price_per_hour: isNumber(value.price_per_hour) ? value.price_per_hour : NaN,
    ...top,
    estimates: { fp32: estimate('fp32'), fp16: estimate('fp16') }
  };
}

function parseModels(value: unknown): IModelEntry[] {
  if (!Array.isArray(value)) {
    return [];
  }
  return value
    .filter(isObject)
    .filter(m => typeof m.variable === 'string')
    .map(m => ({
      variable: m.variable as string,
      kind: typeof m.kind === 'string' ? m.kind : '',
      summary: typeof m.summary === 'string' ? m.summary : ''
    }));
}

function isLength(value: unknown): value is number {
  return isNumber(value) && Number.isInteger(value) && value > 0;
}

function parseSequence(value: unknown): ISequenceInfo | null {
  if (!isObject(value) || !isLength(value.seq_len)) {
    return null;
  }
  const lengths = Array.isArray(value.lengths)
    ? value.lengths.filter(isLength)
    : [];
  return {
    seq_len: value.seq_len,
    lengths: lengths.includes(value.seq_len) ? lengths : [value.seq_len]
  };
}

function parseProfiling(value: unknown): IProfilingInfo | null {
  if (!isObject(value) || typeof value.variable !== 'string') {
    return null;
  }
  const progress = numberOrNull(value.progress);
  return {
    variable: value.variable,
    seq_len: isLength(value.seq_len) ? value.seq_len : null,
    stage: typeof value.stage === 'string' ? value.stage : null,
    progress: progress === null ? null : Math.min(Math.max(progress, 0), 1),
    error: typeof value.error === 'string' ? value.error : null
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
    sequence: model ? parseSequence(value.sequence) : null,
    profiling: parseProfiling(value.profiling),
    models: parseModels(value.models),
    latency_accuracy:
      typeof value.latency_accuracy === 'string' && value.latency_accuracy
        ? value.latency_accuracy
        : null,
    cost: {
      rate_per_hour: cost.rate_per_hour,
      total: cost.total,
      instance: isNumber(cost.instance) ? cost.instance : 0,
      accelerator: isNumber(cost.accelerator) ? cost.accelerator : 0,
      metered: cost.metered === true
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
  /** "pending" or "refused" while a request waits or was refused. */
  note: string | null;
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
  /**
   * @param options.idPrefix - prefix of the request ids
   * @param options.now - the clock, in milliseconds (tests pass their own)
   */
  constructor(options: { idPrefix?: string; now?: () => number } = {}) {
    this._idPrefix = options.idPrefix ?? 'fe';
    this._now = options.now ?? Date.now;
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

  /** The running cost now: the last push plus the time since, at its rate. */
  costNow(): number {
    return this._ticker.value(this._now());
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
    this._restart(sender, 'connecting');
  }

  /** The notebook has no kernel (or it died or is restarting). */
  kernelGone(): void {
    this._state = null;
    this._restart(null, 'no-kernel');
  }

  /**
   * The comm was closed. Before any answer this means the kernel has no
   * `ei_widgets` target: the extension is not loaded there.
   */
  handleClose(): void {
    this._state = null;
    this._restart(null, 'not-loaded');
  }

  /** Handle a message from the kernel; returns false if it was not understood. */
  handleMessage(data: unknown): boolean {
    const message = parseMessage(data);
    if (!message) {
      return false;
    }
    this._answered = true;
    if (message.type !== 'error') {
      this._ticker.update(message.state.cost, this._now());
    }
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

  /** Ask the kernel to judge fits by one of the models it found. */
  setModel(variable: string): string {
    return this._send(
      buildRequest('set-model', this._nextId(), { variable }),
      variable
    );
  }

  /** Ask the kernel to judge the model at `seqLen` tokens. */
  setSeqLen(seqLen: number): string {
    return this._send(
      buildRequest('set-seq-len', this._nextId(), { seq_len: seqLen }),
      null
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

  /** A new comm (or none): nothing answered or pending on it yet, no error. */
  private _restart(sender: Sender | null, phase: Phase): void {
    this._sender = sender;
    this._answered = false;
    this._pending.clear();
    this._error = null;
    this._setPhase(phase);
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
  private _now: () => number;
  private _ticker = new CostTicker();
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
        title: 'Elastic Inference: this notebook has no running kernel',
        note: null
      };
    case 'connecting':
      return {
        phase,
        label: 'EI: connecting…',
        title: 'Elastic Inference: waiting for the kernel to answer',
        note: null
      };
    case 'not-loaded':
      return {
        phase,
        label: 'EI: not loaded',
        title: `Elastic Inference is not loaded in this kernel. Click to load it with ${LOAD_CODE}`,
        note: null
      };
    default:
      break;
  }
  if (!state) {
    return {
      phase,
      label: phase === 'error' ? 'EI: error' : 'EI: …',
      title: error ? `Elastic Inference: ${error}` : 'Elastic Inference',
      note: phase === 'error' ? 'refused' : null
    };
  }
  const attached = state.attached;
  const label = attached
    ? `EI: ${attached.name} · ${attached.precision}`
    : 'EI: No accelerator';
  let note: string | null = null;
  let title =
    `Elastic Inference on ${state.instance.name}: ` +
    (attached
      ? `${attached.name} attached (${attached.precision})`
      : 'no accelerator attached') +
    `, ${formatPrice(state.cost.rate_per_hour)}, ${formatMoney(state.cost.total)} so far`;
  if (phase === 'pending') {
    const first = pending[0];
    const what =
      first && first.type === 'attach' && first.target
        ? `attaching ${first.target}`
        : first && first.type === 'detach'
          ? 'detaching'
          : first && first.type === 'set-model' && first.target
            ? `judging fits by ${first.target}`
            : first && first.type === 'set-seq-len'
              ? 'changing the sequence length'
              : 'waiting for the kernel';
    note = 'pending';
    title += `. Pending: ${what} (the kernel answers when the running cell ends)`;
  } else if (phase === 'error' && error) {
    note = 'refused';
    title += `. Refused: ${error}`;
  }
  if (state.profiling) {
    title += `. ${profilingStatus(state.profiling).text}`;
  }
  return { phase, label, title, note };
}

/** What the picker says of a profile being made, or of its failure. */
export interface IProfilingStatus {
  /** "profiling net (converting, 40%)…" or the failure. */
  text: string;
  /** 0..100 while a conversion reports how far it is, else null. */
  percentage: number | null;
  failed: boolean;
}

export function profilingStatus(profiling: IProfilingInfo): IProfilingStatus {
  if (profiling.error !== null) {
    return { text: profiling.error, percentage: null, failed: true };
  }
  const percentage =
    profiling.progress === null ? null : Math.round(profiling.progress * 100);
  const details = [
    profiling.seq_len !== null ? `at ${profiling.seq_len} tokens` : null,
    profiling.stage,
    percentage !== null ? `${percentage}%` : null
  ].filter(part => part !== null);
  return {
    text:
      `profiling ${profiling.variable}` +
      (details.length > 0 ? ` (${details.join(', ')})` : '') +
      '…',
    percentage,
    failed: false
  };
}

/** True while a profile is being made (a failure is not pending). */
export function isProfiling(state: IKernelState | null): boolean {
  return !!state?.profiling && state.profiling.error === null;
}
