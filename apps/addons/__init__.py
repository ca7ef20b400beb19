"""Platform add-ons the apps depend on, as pure functions of the environment like the apps:
Argo CD installs them from the same GitOps tree, in an earlier sync wave."""
