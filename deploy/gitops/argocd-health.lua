-- Argo CD health check for anchore.io/v1alpha1 AnchorePolicyBinding and ClusterAnchorePolicyBinding.
--
-- Install it in argocd-cm under resource.customizations.health.anchore.io_AnchorePolicyBinding and
-- resource.customizations.health.anchore.io_ClusterAnchorePolicyBinding (see docs/gitops.md and
-- deploy/gitops/argocd-cm-health.yaml). It reads only what the anchore-operator writes (status.observedGeneration and
-- the Ready / Reconciling / Stalled / Compliant conditions, docs/api.md) and follows the same rules as kstatus, so
-- Argo CD and Flux agree:
--
--   kstatus (Flux)   Argo CD health   when
--   InProgress       Progressing      no status yet, status.observedGeneration behind metadata.generation,
--                                     Reconciling=True (AnalysisPending, AnchoreUnavailable), Ready not True
--   Failed           Degraded         Stalled=True (PolicyNotFound, AccountNotFound, AuthFailed, InvalidSelector,
--                                     InvalidSpec)
--   Current          Healthy          Ready=True (Evaluated, Analyzed, NoMatchingImages), whatever the verdict
--   Current          Suspended        Ready=True with reason Suspended (spec.suspend: true)
--
-- A policy verdict is not a health problem: a binding whose images fail the policy is Healthy (the operator did its
-- job) and the message carries the Compliant condition. Set DEGRADED_WHEN_NONCOMPLIANT to true to make Argo CD show
-- such bindings as Degraded instead (this also fails `argocd app wait --health` and holds back later sync waves).
--
-- Written for Argo CD's default Lua sandbox (argocd-cm scripts run without the string, math or io libraries), so it
-- uses only the base and table functions.
local DEGRADED_WHEN_NONCOMPLIANT = false

local hs = { status = "Progressing", message = "Waiting for the anchore-operator to report status" }

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Being deleted"
  return hs
end
if obj.status == nil or obj.status.conditions == nil then
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed ~= generation then
  hs.message = "Waiting for the anchore-operator to evaluate generation " .. tostring(generation) ..
    " (status describes generation " .. tostring(observed) .. ")"
  return hs
end

local ready, reconciling, stalled, compliant = nil, nil, nil, nil
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    ready = c
  elseif c.type == "Reconciling" then
    reconciling = c
  elseif c.type == "Stalled" then
    stalled = c
  elseif c.type == "Compliant" then
    compliant = c
  end
end

local function describe(c)
  local m = c.message
  if m == nil or m == "" then
    m = tostring(c.type) .. "=" .. tostring(c.status)
  end
  if c.reason ~= nil and c.reason ~= "" then
    return tostring(c.reason) .. ": " .. tostring(m)
  end
  return tostring(m)
end

-- kstatus order: Reconciling=True, then Stalled=True, then Ready. The operator never sets both.
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling)
  return hs
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end
if ready == nil then
  hs.message = "Waiting for the Ready condition"
  return hs
end
if ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = describe(ready)
  return hs
end

if ready.reason == "Suspended" then
  hs.status = "Suspended"
  hs.message = describe(ready)
  return hs
end
hs.status = "Healthy"
hs.message = describe(ready)
if compliant ~= nil then
  hs.message = hs.message .. "; " .. describe(compliant)
  if DEGRADED_WHEN_NONCOMPLIANT and compliant.status ~= "True" then
    hs.status = "Degraded"
  end
end
return hs
