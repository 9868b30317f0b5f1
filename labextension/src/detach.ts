/**
 * Detaching, one behaviour wherever it is asked for (the picker's buttons, the command
 * palette): it asks first, and the question says what really follows.
 */

/** The question asked before detaching `name`: what happens next, in the kernel's words. */
export function detachQuestion(name: string): string {
  return `Detach ${name}? Sessions then fail until an accelerator is attached again.`;
}

/** What detaching needs of the kernel model. */
export interface IDetachable {
  readonly state: {
    readonly attached: { readonly name: string } | null;
  } | null;
  detach(): string;
}

/**
 * Ask (`ask` answers true to go ahead) and detach only when told to; returns the request id,
 * or null when nothing was attached or the user kept it attached.
 */
export async function detachAfterAsking(
  model: IDetachable,
  ask: (question: string) => Promise<boolean>
): Promise<string | null> {
  const attached = model.state?.attached;
  if (!attached) {
    return null;
  }
  if (!(await ask(detachQuestion(attached.name)))) {
    return null;
  }
  // Still attached after the question? The kernel may have changed meanwhile.
  return model.state?.attached ? model.detach() : null;
}
