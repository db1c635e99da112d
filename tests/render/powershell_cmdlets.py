"""The cmdlets the emitted scripts may call, with the parameters each accepts: taken from
Microsoft's reference (Microsoft Graph PowerShell 2.x, learn.microsoft.com/powershell/module/
microsoft.graph.*; PowerShell 7's built-ins from Microsoft.PowerShell.*). Common parameters
(-ErrorAction, -Verbose, …) are allowed everywhere. `pwsh` is not in the package registries
this project installs from, so the scripts are checked against this list instead of parsed.
"""

from __future__ import annotations

from typing import Final

COMMON: Final = frozenset(
    {"ErrorAction", "ErrorVariable", "Verbose", "Debug", "WarningAction", "OutVariable"}
)

CMDLETS: Final[dict[str, frozenset[str]]] = {
    # Microsoft.Graph.Authentication
    "Connect-MgGraph": frozenset({"TenantId", "Scopes", "NoWelcome", "Environment", "ClientId"}),
    "Invoke-MgGraphRequest": frozenset(
        {"Method", "Uri", "Body", "ContentType", "OutputType", "Headers"}
    ),
    # Microsoft.Graph.Identity.SignIns
    "New-MgPolicyCrossTenantAccessPolicyPartner": frozenset({"BodyParameter"}),
    "Update-MgPolicyCrossTenantAccessPolicyPartner": frozenset(
        {"CrossTenantAccessPolicyConfigurationPartnerTenantId", "BodyParameter"}
    ),
    "Remove-MgPolicyCrossTenantAccessPolicyPartner": frozenset(
        {"CrossTenantAccessPolicyConfigurationPartnerTenantId"}
    ),
    "Update-MgPolicyCrossTenantAccessPolicyDefault": frozenset({"BodyParameter"}),
    "Reset-MgPolicyCrossTenantAccessPolicyDefaultToSystemDefault": frozenset(),
    "Update-MgPolicyCrossTenantAccessPolicyPartnerIdentitySynchronization": frozenset(
        {"CrossTenantAccessPolicyConfigurationPartnerTenantId", "BodyParameter"}
    ),
    "Remove-MgPolicyCrossTenantAccessPolicyPartnerIdentitySynchronization": frozenset(
        {"CrossTenantAccessPolicyConfigurationPartnerTenantId"}
    ),
    # Microsoft.Graph.Applications
    "Invoke-MgInstantiateApplicationTemplate": frozenset({"ApplicationTemplateId", "DisplayName"}),
    "Get-MgServicePrincipal": frozenset({"ServicePrincipalId", "Filter", "Property"}),
    "Update-MgServicePrincipal": frozenset({"ServicePrincipalId", "Tags", "BodyParameter"}),
    "Remove-MgApplicationByAppId": frozenset({"AppId"}),
    "New-MgServicePrincipalSynchronizationJob": frozenset({"ServicePrincipalId", "TemplateId"}),
    "Get-MgServicePrincipalSynchronizationJob": frozenset(
        {"ServicePrincipalId", "SynchronizationJobId"}
    ),
    "Start-MgServicePrincipalSynchronizationJob": frozenset(
        {"ServicePrincipalId", "SynchronizationJobId"}
    ),
    "Suspend-MgServicePrincipalSynchronizationJob": frozenset(
        {"ServicePrincipalId", "SynchronizationJobId"}
    ),
    "Remove-MgServicePrincipalSynchronizationJob": frozenset(
        {"ServicePrincipalId", "SynchronizationJobId"}
    ),
    "New-MgServicePrincipalAppRoleAssignedTo": frozenset(
        {"ServicePrincipalId", "AppRoleId", "ResourceId", "PrincipalId", "BodyParameter"}
    ),
    "Remove-MgServicePrincipalAppRoleAssignedTo": frozenset(
        {"ServicePrincipalId", "AppRoleAssignmentId"}
    ),
    # PowerShell 7 built-ins
    "ConvertTo-Json": frozenset({"Depth", "Compress", "InputObject"}),
    "ConvertFrom-Json": frozenset({"InputObject", "Depth", "AsHashtable"}),
    "Where-Object": frozenset({"FilterScript", "Property", "Value", "EQ"}),
    "Start-Sleep": frozenset({"Seconds", "Milliseconds"}),
    "Out-Null": frozenset(),
    "Get-Date": frozenset({"Date", "Format"}),
    "Write-Host": frozenset({"Object", "NoNewline"}),
}
