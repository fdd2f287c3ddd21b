-- Pausing, resuming and capping a kind are operator actions like a cancel
-- or a retry, and go to the same audit table (with no job; the kind is in
-- the detail).
alter table operator_actions drop constraint operator_actions_action_check;
alter table operator_actions add constraint operator_actions_action_check
    check (action in ('cancel', 'retry', 'pause', 'resume', 'cap'));
