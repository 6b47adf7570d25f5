// Two answers any request can meet, handled once for every screen:
// - 403 STEP_UP_REQUIRED: the person proves a second factor again (a modal), and the
//   request is sent once more;
// - 403 MFA_ENROLLMENT_REQUIRED: their role needs MFA they have not set up; each app
//   shows the way to set it up.
// The API client's fetch calls these; the apps' components plug in how to ask.

type Listener = () => void;

/** Opens the step-up modal with the methods the API offered; true once it succeeded. */
export type StepUpPrompt = (methods: string[]) => Promise<boolean>;

let prompt: StepUpPrompt | null = null;
let asking: Promise<boolean> | null = null;

/** The step-up modal registers here while it is mounted. */
export function setStepUpPrompt(next: StepUpPrompt): () => void {
  prompt = next;
  return () => {
    if (prompt === next) prompt = null;
  };
}

/** One modal for every request that needs it at the same moment. */
export function askStepUp(methods: string[]): Promise<boolean> {
  if (!prompt) return Promise.resolve(false);
  if (!asking) {
    asking = prompt(methods).finally(() => {
      asking = null;
    });
  }
  return asking;
}

let enrolmentRequired = false;
const listeners = new Set<Listener>();

export const enrolmentGate = {
  get required(): boolean {
    return enrolmentRequired;
  },
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  set(required: boolean): void {
    if (required === enrolmentRequired) return;
    enrolmentRequired = required;
    for (const listener of listeners) listener();
  },
};
