// Issue 7's end-to-end promise (see batch-scenario.ts) with checkpoints on shared storage (the
// pool's storageMode "shared"): the test host sees the machine's filesystem outside libvirt's
// own dirs, so B resumes from the file A wrote.
import { describeBatchCheckpointResume } from './batch-scenario.js';

describeBatchCheckpointResume({
  title: 'a batch task checkpointed by a tap resumes on another PC (real libvirt)',
  it: 'checkpoints at the tap, restores the desktop at once, resumes on B and finishes counting on',
  testhost: { name: 'dptbatch', addr: '10.77.71.2' },
  storageMode: 'shared',
  moveStateOverSsh: false,
});
