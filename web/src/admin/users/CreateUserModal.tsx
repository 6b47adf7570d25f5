import { Button, Group, Modal, Select, Stack, TextInput } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useNavigate } from "react-router";
import type { Role } from "../../shared/api";
import { fieldErrors } from "../../shared/errors";
import { notifySuccess } from "../../shared/notify";
import { PasswordField } from "../../shared/PasswordField";
import { ErrorText } from "../../shared/ui";
import { useCreateUser } from "./queries";
import { ROLES } from "./usersState";

type Values = { name: string; email: string; password: string; role: Role };

const ROLE_OPTIONS = ROLES.map((role) => ({
  value: role,
  label: role === "readonly" ? "readonly (reads everything, changes nothing)" : role,
}));

export function validateNewUser(values: Values): Partial<Record<keyof Values, string>> {
  const errors: Partial<Record<keyof Values, string>> = {};
  if (!values.name.trim()) errors.name = "Enter a name";
  if (!/^[^\s@]+@[^\s@]+$/.test(values.email.trim())) errors.email = "Enter an email address";
  if (values.password.length < 8) errors.password = "Use at least 8 characters";
  return errors;
}

export function CreateUserModal({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const navigate = useNavigate();
  const form = useForm<Values>({
    initialValues: { name: "", email: "", password: "", role: "user" },
    validate: validateNewUser,
  });

  const create = useCreateUser({
    onSuccess: (user) => {
      notifySuccess({ message: `${user.name} can now log in as ${user.email}.` });
      close();
      navigate(`/users/${user.id}`);
    },
    onError: (error) => {
      form.setErrors(fieldErrors(error));
    },
  });

  const close = () => {
    form.reset();
    create.reset();
    onClose();
  };

  // A field's own message is shown at the field; anything else above the form.
  const general = create.error && Object.keys(form.errors).length === 0 ? create.error : null;

  return (
    <Modal opened={opened} onClose={close} title="Create user">
      <form
        onSubmit={form.onSubmit((values) =>
          create.mutate({ ...values, name: values.name.trim(), email: values.email.trim() }),
        )}
        noValidate
        aria-label="Create user"
      >
        <Stack>
          <ErrorText error={general} />
          <TextInput label="Name" required data-autofocus autoComplete="off" {...form.getInputProps("name")} />
          <TextInput label="Email" type="email" required autoComplete="off" {...form.getInputProps("email")} />
          <PasswordField
            label="Password"
            required
            autoComplete="new-password"
            description="At least 8 characters; not a common password, nor containing the name or email"
            {...form.getInputProps("password")}
          />
          <Select label="Role" data={ROLE_OPTIONS} allowDeselect={false} {...form.getInputProps("role")} />
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending}>
              Create user
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
