import { detachAfterAsking, detachQuestion, IDetachable } from '../detach';

function fakeModel(
  attached: string | null
): IDetachable & { detached: number } {
  return {
    detached: 0,
    state: { attached: attached ? { name: attached } : null },
    detach() {
      this.detached += 1;
      return 'id-1';
    }
  };
}

describe('detaching asks first, wherever it is asked for', () => {
  it('says what really follows: sessions fail, nothing runs on the CPUs', () => {
    const question = detachQuestion('ml.eia2.medium');
    expect(question).toBe(
      'Detach ml.eia2.medium? Sessions then fail until an accelerator is attached again.'
    );
    expect(question).not.toMatch(/CPU/);
  });

  it('detaches only after a yes', async () => {
    const model = fakeModel('ml.eia2.medium');
    const asked: string[] = [];
    const no = await detachAfterAsking(model, async q => {
      asked.push(q);
      return false;
    });
    expect(no).toBeNull();
    expect(model.detached).toBe(0);
    expect(asked).toEqual([detachQuestion('ml.eia2.medium')]);
    const yes = await detachAfterAsking(model, async () => true);
    expect(yes).toBe('id-1');
    expect(model.detached).toBe(1);
  });

  it('asks nothing when nothing is attached', async () => {
    const model = fakeModel(null);
    const ask = jest.fn(async () => true);
    expect(await detachAfterAsking(model, ask)).toBeNull();
    expect(ask).not.toHaveBeenCalled();
    expect(model.detached).toBe(0);
  });
});
