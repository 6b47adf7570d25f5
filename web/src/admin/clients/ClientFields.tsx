import { Checkbox, Input, Radio, SimpleGrid, Stack, Switch, Textarea, TextInput } from "@mantine/core";
import type { UseFormReturnType } from "@mantine/form";
import { CLIENT_TYPES, type ClientValues, GRANT_TYPES, SCOPES } from "./options";

type Props = { form: UseFormReturnType<ClientValues>; editing?: boolean };

const fieldset = { border: 0, padding: 0, margin: 0 } as const;

/** The fields of a client, for its registration and its edit (where the type is fixed). */
export function ClientFields({ form, editing = false }: Props) {
  const isPublic = form.values.type === "public";
  return (
    <Stack>
      <TextInput label="Name" required placeholder="Acme CRM" data-autofocus {...form.getInputProps("name")} />
      {!editing && (
        <Radio.Group label="Type" withAsterisk {...form.getInputProps("type")}>
          <Stack gap="xs" mt={4}>
            {CLIENT_TYPES.map((type) => (
              <Radio key={type.value} value={type.value} label={type.label} description={type.description} />
            ))}
          </Stack>
        </Radio.Group>
      )}
      <Textarea
        label="Redirect URIs"
        description="One a line; each matched exactly. https, or http on localhost / 127.0.0.1"
        placeholder="https://crm.example.com/callback"
        autosize
        minRows={2}
        {...form.getInputProps("redirect_uris")}
      />
      <Textarea
        label="Post-logout redirect URIs"
        description="One a line: where the application may send people after they log out"
        placeholder="https://crm.example.com/"
        autosize
        minRows={1}
        {...form.getInputProps("post_logout_redirect_uris")}
      />
      <Input.Wrapper
        label="Scopes"
        labelElement="div"
        withAsterisk
        error={form.errors.scopes}
        component="fieldset"
        style={fieldset}
      >
        <Checkbox.Group
          value={form.values.scopes}
          onChange={(next) => form.setFieldValue("scopes", next)}
          aria-label="Scopes"
        >
          <SimpleGrid cols={{ base: 1, xs: 2 }} spacing="xs" mt={4}>
            {SCOPES.map((scope) => (
              <Checkbox key={scope.value} value={scope.value} label={scope.value} description={scope.description} />
            ))}
          </SimpleGrid>
        </Checkbox.Group>
      </Input.Wrapper>
      <Input.Wrapper
        label="Grant types"
        labelElement="div"
        withAsterisk
        error={form.errors.grant_types}
        component="fieldset"
        style={fieldset}
      >
        <Checkbox.Group
          value={form.values.grant_types}
          onChange={(next) => form.setFieldValue("grant_types", next)}
          aria-label="Grant types"
        >
          <Stack gap="xs" mt={4}>
            {GRANT_TYPES.map((grant) => (
              <Checkbox
                key={grant.value}
                value={grant.value}
                label={grant.value}
                description={grant.description}
                disabled={grant.value === "client_credentials" && isPublic}
              />
            ))}
          </Stack>
        </Checkbox.Group>
      </Input.Wrapper>
      <Switch
        label="Trusted (first-party)"
        description="People are not asked to consent: for your own applications only"
        {...form.getInputProps("trusted", { type: "checkbox" })}
      />
      <TextInput
        label="Logo URL"
        type="url"
        placeholder="https://crm.example.com/logo.png"
        description="An https image the consent screen shows; leave empty for none"
        {...form.getInputProps("logo_url")}
      />
    </Stack>
  );
}
