import { Modal, Text } from "@mantine/core";
import { type ReactNode, useEffect, useState } from "react";
import { setStepUpPrompt } from "../gates";
import { type SecondFactor, stepUp } from "./queries";
import { SecondFactorForm } from "./SecondFactorForm";

type Pending = { methods: string[]; resolve: (proved: boolean) => void };

/**
 * The step-up modal, for any request answered with 403 STEP_UP_REQUIRED: the API client
 * waits on it, and sends the request again once the person proved a second factor.
 */
export function StepUpProvider({ children }: { children: ReactNode }) {
  const [pending, setPending] = useState<Pending | null>(null);

  useEffect(() => setStepUpPrompt((methods) => new Promise((resolve) => setPending({ methods, resolve }))), []);

  const finish = (proved: boolean) => {
    pending?.resolve(proved);
    setPending(null);
  };

  return (
    <>
      {children}
      <Modal opened={pending !== null} onClose={() => finish(false)} title="Confirm it's you" centered>
        {pending && (
          <SecondFactorForm
            label="Confirm it's you"
            methods={pending.methods}
            submitLabel="Confirm"
            intro={
              <Text size="sm">This change needs your second factor. Once confirmed, it goes ahead by itself.</Text>
            }
            onSubmit={async (factor: SecondFactor) => {
              await stepUp(factor);
              finish(true);
            }}
          />
        )}
      </Modal>
    </>
  );
}
