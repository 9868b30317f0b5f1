/**
 * One notebook's link to its kernel: a comm on the notebook's own kernel
 * connection, re-opened after a restart or a kernel change.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';

import {
  COMM_TARGET,
  KernelModel,
  LOAD_CODE,
  PROTOCOL_VERSION,
  Request
} from './model';

/**
 * Kernel statuses in which a comm can be opened. While the kernel is still
 * starting the connection queues the comm_open until the kernel is up (after
 * a restart JupyterLab may not report "idle" until the kernel next runs
 * something).
 */
const LIVE: ReadonlySet<Kernel.Status> = new Set<Kernel.Status>([
  'starting',
  'idle',
  'busy'
]);

/** Kernel statuses after which the kernel-side state is gone. */
const GONE: ReadonlySet<Kernel.Status> = new Set<Kernel.Status>([
  'restarting',
  'autorestarting',
  'dead',
  'terminating'
]);

let connectorCount = 0;

export class KernelConnector implements IDisposable {
  readonly model: KernelModel;

  /**
   * @param sessionContext - the notebook's session context
   * @param label - the notebook's name as its tab shows it
   */
  constructor(
    readonly sessionContext: ISessionContext,
    label?: () => string
  ) {
    this._label = label ?? null;
    connectorCount += 1;
    this.model = new KernelModel({ idPrefix: `nb${connectorCount}` });
    sessionContext.kernelChanged.connect(this._onKernelChanged, this);
    sessionContext.statusChanged.connect(this._onStatusChanged, this);
    sessionContext.iopubMessage.connect(this._onIopub, this);
    this._followKernel();
    this._needOpen = true;
    this._maybeOpen();
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** The notebook's name, for titles. */
  get label(): string {
    const fromPanel = this._label ? this._label() : '';
    const path = this.sessionContext.path || this.sessionContext.name;
    return fromPanel || path.split('/').pop() || 'notebook';
  }

  get kernel(): Kernel.IKernelConnection | null {
    return this.sessionContext.session?.kernel ?? null;
  }

  /** Open a fresh comm now (for example to look again for the target). */
  reconnect(): void {
    this._closeComm(true);
    this._needOpen = true;
    this._maybeOpen();
  }

  /**
   * Run `%load_ext ei_widgets` in the kernel (only ever on an explicit click),
   * then connect again.
   */
  async loadExtension(): Promise<void> {
    const kernel = this.kernel;
    if (!kernel) {
      throw new Error('this notebook has no kernel');
    }
    const future = kernel.requestExecute({
      code: LOAD_CODE,
      silent: false,
      store_history: false,
      stop_on_error: false
    });
    const reply = await future.done;
    if (reply.content.status !== 'ok') {
      const content = reply.content as KernelMessage.IReplyErrorContent;
      throw new Error(
        `${LOAD_CODE} failed: ${content.ename ?? 'error'}: ${content.evalue ?? ''}`
      );
    }
    this.reconnect();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this.sessionContext.kernelChanged.disconnect(this._onKernelChanged, this);
    this.sessionContext.statusChanged.disconnect(this._onStatusChanged, this);
    this.sessionContext.iopubMessage.disconnect(this._onIopub, this);
    this._followed?.statusChanged.disconnect(this._onKernelStatus, this);
    this._followed = null;
    this._closeComm(true);
  }

  /**
   * Follow the kernel connection's own status too: after a restart the
   * session context may report the kernel idle before it stops reporting
   * "restarting", and then stay silent.
   */
  private _followKernel(): void {
    const kernel = this.kernel;
    if (kernel === this._followed) {
      return;
    }
    this._followed?.statusChanged.disconnect(this._onKernelStatus, this);
    this._followed = kernel;
    kernel?.statusChanged.connect(this._onKernelStatus, this);
  }

  private _onKernelStatus(
    kernel: Kernel.IKernelConnection,
    status: Kernel.Status
  ): void {
    if (kernel === this.kernel) {
      this._onStatusChanged(this.sessionContext, status);
    }
  }

  private _onKernelChanged(): void {
    this._followKernel();
    this._closeComm(false);
    this.model.kernelGone();
    this._needOpen = true;
    this._maybeOpen();
  }

  private _onStatusChanged(_: ISessionContext, status: Kernel.Status): void {
    if (GONE.has(status)) {
      this._closeComm(false);
      this.model.kernelGone();
      this._needOpen = true;
      return;
    }
    this._maybeOpen();
  }

  /**
   * While the target is missing, look again after a cell that mentions
   * `ei_widgets` ran (for example `%load_ext ei_widgets`).
   */
  private _onIopub(_: ISessionContext, msg: KernelMessage.IMessage): void {
    const type = msg.header.msg_type;
    if (type === 'execute_input') {
      const code = (msg as KernelMessage.IExecuteInputMsg).content.code;
      if (typeof code === 'string' && code.includes(COMM_TARGET)) {
        this._probeWhenIdle = true;
      }
    } else if (type === 'status' && this._probeWhenIdle) {
      const state = (msg as KernelMessage.IStatusMsg).content.execution_state;
      if (state === 'idle') {
        this._probeWhenIdle = false;
        if (this.model.phase === 'not-loaded') {
          this.reconnect();
        }
      }
    }
  }

  private _maybeOpen(): void {
    if (this._isDisposed || !this._needOpen) {
      return;
    }
    const kernel = this.kernel;
    if (!kernel) {
      this.model.kernelGone();
      return;
    }
    if (!LIVE.has(kernel.status)) {
      return;
    }
    this._needOpen = false;
    let comm: Kernel.IComm;
    try {
      comm = kernel.createComm(COMM_TARGET);
    } catch (reason) {
      console.warn('ei-widgets: could not create a comm', reason);
      this.model.handleClose();
      return;
    }
    this._comm = comm;
    comm.onMsg = msg => {
      if (this._comm !== comm) {
        return;
      }
      if (!this.model.handleMessage(msg.content.data)) {
        console.warn('ei-widgets: ignored a message', msg.content.data);
      }
    };
    comm.onClose = () => {
      if (this._comm !== comm) {
        return;
      }
      this._comm = null;
      this.model.handleClose();
    };
    this.model.connecting((request: Request) => {
      if (this._comm !== comm || comm.isDisposed) {
        throw new Error('the comm to the kernel is closed');
      }
      comm.send(request as any);
    });
    try {
      comm.open({ v: PROTOCOL_VERSION, type: 'get-state', id: 'open' });
    } catch (reason) {
      console.warn('ei-widgets: could not open a comm', reason);
      this._comm = null;
      this.model.handleClose();
    }
  }

  /** Forget the current comm; tell the kernel if it is still reachable. */
  private _closeComm(notifyKernel: boolean): void {
    const comm = this._comm;
    this._comm = null;
    if (!comm || comm.isDisposed) {
      return;
    }
    if (notifyKernel) {
      try {
        comm.close();
      } catch (reason) {
        comm.dispose();
      }
    } else {
      comm.dispose();
    }
  }

  private _label: (() => string) | null;
  private _comm: Kernel.IComm | null = null;
  private _followed: Kernel.IKernelConnection | null = null;
  private _needOpen = false;
  private _probeWhenIdle = false;
  private _isDisposed = false;
}
