/**
 * The "default notebook instance type" setting: set in each kernel once, the
 * first time its state arrives, so that a later choice in the picker stays.
 * Free of any DOM or JupyterLab import so that it can be tested on its own.
 */
import { KernelModel } from './model';

export class DefaultInstance {
  /** The instance type from the settings; empty sets nothing. */
  name = '';

  /** Set the instance type in this kernel unless it was already done. */
  apply(model: KernelModel, kernelId: string | undefined): void {
    const state = model.state;
    if (
      !this.name ||
      !kernelId ||
      !state ||
      model.phase !== 'ready' ||
      this._applied.has(kernelId)
    ) {
      return;
    }
    this._applied.add(kernelId);
    // A name this kernel's catalog does not know would only be refused.
    const known = state.instances.some(i => i.name === this.name);
    if (known && state.instance.name !== this.name) {
      model.setInstance(this.name);
    }
  }

  /** The kernels (by id) whose instance type was already set. */
  private _applied = new Set<string>();
}
